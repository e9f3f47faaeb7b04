#!/usr/bin/env python
"""Tutorial 5, topics (kombu): print the log messages matching the binding keys given as arguments.

'*' stands for exactly one word, '#' for zero or more: 'kern.*', '*.critical', '#'.
"""
import os
import sys

from kombu import Connection, Exchange, Queue, binding

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')

topic_logs = Exchange(PREFIX + 'topic_logs', type='topic', durable=False)


def callback(body, message):
    print(f" [x] {message.delivery_info['routing_key']}:{body}")


def main():
    binding_keys = sys.argv[1:]
    if not binding_keys:
        sys.stderr.write(f'Usage: {sys.argv[0]} [binding_key]...\n')
        sys.exit(1)

    queue = Queue('', [binding(topic_logs, routing_key=key) for key in binding_keys], exclusive=True)

    with Connection(URL) as connection:
        with connection.Consumer(queue, callbacks=[callback], no_ack=True):
            print(' [*] Waiting for logs. To exit press CTRL+C')
            while True:
                connection.drain_events()


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        print('Interrupted')
        sys.exit(0)
