#!/usr/bin/env python
"""Tutorial 4, routing (kombu): send one log message with its severity as the routing key."""
import os
import sys

from kombu import Connection, Exchange

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')

direct_logs = Exchange(PREFIX + 'direct_logs', type='direct', durable=False)

severity = sys.argv[1] if len(sys.argv) > 1 else 'info'
message = ' '.join(sys.argv[2:]) or 'Hello World!'
with Connection(URL) as connection:
    producer = connection.Producer(exchange=direct_logs)
    producer.publish(message, routing_key=severity, declare=[direct_logs])
    print(f' [x] Sent {severity}:{message}')
