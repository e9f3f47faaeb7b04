#!/usr/bin/env python
"""Tutorial 1, "Hello World!" (pika): put one message on the queue 'hello'."""
import os

import pika

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')  # lets several runs share a broker

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()

channel.queue_declare(queue=PREFIX + 'hello')

channel.basic_publish(exchange='', routing_key=PREFIX + 'hello', body='Hello World!')
print(" [x] Sent 'Hello World!'")
connection.close()
