#!/usr/bin/env python
"""Tutorial 5, topics (kombu): send one log message under a routing key like 'kern.critical'."""
import os
import sys

from kombu import Connection, Exchange

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')

topic_logs = Exchange(PREFIX + 'topic_logs', type='topic', durable=False)

routing_key = sys.argv[1] if len(sys.argv) > 1 else 'anonymous.info'
message = ' '.join(sys.argv[2:]) or 'Hello World!'
with Connection(URL) as connection:
    producer = connection.Producer(exchange=topic_logs)
    producer.publish(message, routing_key=routing_key, declare=[topic_logs])
    print(f' [x] Sent {routing_key}:{message}')
