#!/usr/bin/env python
"""Tutorial 3, publish/subscribe (pika): print every log message broadcast from now on."""
import os
import sys

import pika

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')


def main():
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()

    channel.exchange_declare(exchange=PREFIX + 'logs', exchange_type='fanout')

    # A fresh, server-named queue of our own, deleted when this connection closes.
    result = channel.queue_declare(queue='', exclusive=True)
    queue_name = result.method.queue

    channel.queue_bind(exchange=PREFIX + 'logs', queue=queue_name)

    def callback(ch, method, properties, body):
        print(f' [x] {body.decode()}')

    channel.basic_consume(queue=queue_name, on_message_callback=callback, auto_ack=True)

    print(f' [*] Waiting for logs on {queue_name}. To exit press CTRL+C')
    channel.start_consuming()


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        print('Interrupted')
        sys.exit(0)
