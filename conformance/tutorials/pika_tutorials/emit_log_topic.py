#!/usr/bin/env python
"""Tutorial 5, topics (pika): send one log message under a routing key like 'kern.critical'."""
import os
import sys

import pika

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()

channel.exchange_declare(exchange=PREFIX + 'topic_logs', exchange_type='topic')

routing_key = sys.argv[1] if len(sys.argv) > 1 else 'anonymous.info'
message = ' '.join(sys.argv[2:]) or 'Hello World!'
channel.basic_publish(exchange=PREFIX + 'topic_logs', routing_key=routing_key, body=message)
print(f' [x] Sent {routing_key}:{message}')
connection.close()
