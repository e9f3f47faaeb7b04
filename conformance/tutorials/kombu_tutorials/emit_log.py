#!/usr/bin/env python
"""Tutorial 3, publish/subscribe (kombu): broadcast one log message on the fanout exchange 'logs'."""
import os
import sys

from kombu import Connection, Exchange

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')

logs = Exchange(PREFIX + 'logs', type='fanout', durable=False)

message = ' '.join(sys.argv[1:]) or 'info: Hello World!'
with Connection(URL) as connection:
    producer = connection.Producer(exchange=logs)
    producer.publish(message, declare=[logs])
    print(f' [x] Sent {message}')
