#!/usr/bin/env python
"""Tutorial 2, work queues (kombu): do tasks one at a time, acknowledging each when done."""
import os
import sys
import time

from kombu import Connection, Queue

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')

task_queue = Queue(PREFIX + 'task_queue', durable=True)


def callback(task, message):
    print(f' [x] Received {task}')
    time.sleep(task.count('.'))
    print(' [x] Done')
    # Only now may the broker forget the task; if this worker dies first, another gets it.
    message.ack()


def main():
    with Connection(URL) as connection:
        # Fair dispatch: no new task for this worker until it has acknowledged the previous one.
        with connection.Consumer(task_queue, callbacks=[callback], prefetch_count=1):
            print(' [*] Waiting for messages. To exit press CTRL+C')
            while True:
                connection.drain_events()


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        print('Interrupted')
        sys.exit(0)
