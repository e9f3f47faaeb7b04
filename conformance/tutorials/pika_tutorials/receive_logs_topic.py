#!/usr/bin/env python
"""Tutorial 5, topics (pika): print the log messages matching the binding keys given as arguments.

'*' stands for exactly one word, '#' for zero or more: 'kern.*', '*.critical', '#'.
"""
import os
import sys

import pika

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')


def main():
    binding_keys = sys.argv[1:]
    if not binding_keys:
        sys.stderr.write(f'Usage: {sys.argv[0]} [binding_key]...\n')
        sys.exit(1)

    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()

    channel.exchange_declare(exchange=PREFIX + 'topic_logs', exchange_type='topic')

    result = channel.queue_declare(queue='', exclusive=True)
    queue_name = result.method.queue

    for binding_key in binding_keys:
        channel.queue_bind(exchange=PREFIX + 'topic_logs', queue=queue_name, routing_key=binding_key)

    def callback(ch, method, properties, body):
        print(f' [x] {method.routing_key}:{body.decode()}')

    channel.basic_consume(queue=queue_name, on_message_callback=callback, auto_ack=True)

    print(' [*] Waiting for logs. To exit press CTRL+C')
    channel.start_consuming()


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        print('Interrupted')
        sys.exit(0)
