#!/usr/bin/env python
"""Tutorial 2, work queues (pika): queue one task; each '.' in it is a second of work."""
import os
import sys

import pika

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()

# Durable: the queue survives a broker restart...
channel.queue_declare(queue=PREFIX + 'task_queue', durable=True)

message = ' '.join(sys.argv[1:]) or 'Hello World!'
channel.basic_publish(
    exchange='',
    routing_key=PREFIX + 'task_queue',
    body=message,
    # ...and so do the messages on it, once they are marked persistent.
    properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
)
print(f' [x] Sent {message}')
connection.close()
