#!/usr/bin/env python
"""Tutorial 3, publish/subscribe (kombu): print every log message broadcast from now on."""
import os
import sys

from kombu import Connection, Exchange, Queue

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')

logs = Exchange(PREFIX + 'logs', type='fanout', durable=False)
# No name: the broker names it. Exclusive: only ours, deleted when this connection closes.
log_queue = Queue('', exchange=logs, exclusive=True)


def callback(body, message):
    print(f' [x] {body}')


def main():
    with Connection(URL) as connection:
        with connection.Consumer(log_queue, callbacks=[callback], no_ack=True) as consumer:
            queue_name = consumer.queues[0].name  # the name the broker chose
            print(f' [*] Waiting for logs on {queue_name}. To exit press CTRL+C')
            while True:
                connection.drain_events()


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        print('Interrupted')
        sys.exit(0)
