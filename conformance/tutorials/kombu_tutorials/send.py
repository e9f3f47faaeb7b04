#!/usr/bin/env python
"""Tutorial 1, "Hello World!" (kombu): put one message on the queue 'hello'."""
import os

from kombu import Connection, Queue

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')  # lets several runs share a broker

hello = Queue(PREFIX + 'hello')  # bound to the default exchange under its own name

with Connection(URL) as connection:
    producer = connection.Producer()
    # declare=[hello] creates the queue first, so the message is not dropped unrouted.
    producer.publish('Hello World!', exchange='', routing_key=hello.name, declare=[hello])
    print(" [x] Sent 'Hello World!'")
