#!/usr/bin/env python
"""Tutorial 1, "Hello World!" (kombu): print whatever arrives on the queue 'hello'."""
import os
import sys

from kombu import Connection, Queue

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')

hello = Queue(PREFIX + 'hello')


def callback(body, message):
    print(f' [x] Received {body!r}')


def main():
    with Connection(URL) as connection:
        # The consumer declares the queue too: whichever program runs first creates it.
        with connection.Consumer(hello, callbacks=[callback], no_ack=True):
            print(' [*] Waiting for messages. To exit press CTRL+C')
            while True:
                connection.drain_events()


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        print('Interrupted')
        sys.exit(0)
