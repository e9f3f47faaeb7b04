#!/usr/bin/env python
"""Tutorial 2, work queues (kombu): queue one task; each '.' in it is a second of work."""
import os
import sys

from kombu import Connection, Queue

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')

# Durable: the queue survives a broker restart (kombu's default, spelled out here)...
task_queue = Queue(PREFIX + 'task_queue', durable=True)

message = ' '.join(sys.argv[1:]) or 'Hello World!'
with Connection(URL) as connection:
    producer = connection.Producer()
    producer.publish(
        message,
        exchange='',
        routing_key=task_queue.name,
        declare=[task_queue],
        # ...and so do the messages on it, once they are marked persistent.
        delivery_mode='persistent',
    )
    print(f' [x] Sent {message}')
