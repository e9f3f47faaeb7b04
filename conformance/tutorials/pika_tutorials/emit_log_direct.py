#!/usr/bin/env python
"""Tutorial 4, routing (pika): send one log message with its severity as the routing key."""
import os
import sys

import pika

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()

channel.exchange_declare(exchange=PREFIX + 'direct_logs', exchange_type='direct')

severity = sys.argv[1] if len(sys.argv) > 1 else 'info'
message = ' '.join(sys.argv[2:]) or 'Hello World!'
channel.basic_publish(exchange=PREFIX + 'direct_logs', routing_key=severity, body=message)
print(f' [x] Sent {severity}:{message}')
connection.close()
