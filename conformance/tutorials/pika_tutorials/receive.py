#!/usr/bin/env python
"""Tutorial 1, "Hello World!" (pika): print whatever arrives on the queue 'hello'."""
import os
import sys

import pika

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')


def main():
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()

    # Declaring is idempotent: whichever of send.py and receive.py runs first creates it.
    channel.queue_declare(queue=PREFIX + 'hello')

    def callback(ch, method, properties, body):
        print(f" [x] Received {body.decode()!r}")

    channel.basic_consume(queue=PREFIX + 'hello', on_message_callback=callback, auto_ack=True)

    print(' [*] Waiting for messages. To exit press CTRL+C')
    channel.start_consuming()


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        print('Interrupted')
        sys.exit(0)
