#!/usr/bin/env python
"""Tutorial 4, routing (kombu): print the log messages of the severities given as arguments."""
import os
import sys

from kombu import Connection, Exchange, Queue, binding

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')

direct_logs = Exchange(PREFIX + 'direct_logs', type='direct', durable=False)


def callback(body, message):
    print(f" [x] {message.delivery_info['routing_key']}:{body}")


def main():
    severities = sys.argv[1:]
    if not severities:
        sys.stderr.write(f'Usage: {sys.argv[0]} [info] [warning] [error]\n')
        sys.exit(1)

    # One binding per severity: the queue gets a message if any of them equals its routing key.
    queue = Queue('', [binding(direct_logs, routing_key=s) for s in severities], exclusive=True)

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
