#!/usr/bin/env python
"""Tutorial 3, publish/subscribe (pika): broadcast one log message on the fanout exchange 'logs'."""
import os
import sys

import pika

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()

channel.exchange_declare(exchange=PREFIX + 'logs', exchange_type='fanout')

message = ' '.join(sys.argv[1:]) or 'info: Hello World!'
channel.basic_publish(exchange=PREFIX + 'logs', routing_key='', body=message)
print(f' [x] Sent {message}')
connection.close()
