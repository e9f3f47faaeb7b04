#!/usr/bin/env python
"""Tutorial 2, work queues (pika): do tasks one at a time, acknowledging each when done."""
import os
import sys
import time

import pika

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')


def main():
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()

    channel.queue_declare(queue=PREFIX + 'task_queue', durable=True)

    def callback(ch, method, properties, body):
        task = body.decode()
        print(f' [x] Received {task}')
        time.sleep(task.count('.'))
        print(' [x] Done')
        # Only now may the broker forget the task; if this worker dies first, another gets it.
        ch.basic_ack(delivery_tag=method.delivery_tag)

    # Fair dispatch: no new task for this worker until it has acknowledged the previous one.
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(queue=PREFIX + 'task_queue', on_message_callback=callback)

    print(' [*] Waiting for messages. To exit press CTRL+C')
    channel.start_consuming()


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        print('Interrupted')
        sys.exit(0)
