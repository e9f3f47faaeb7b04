#!/usr/bin/env python
"""Tutorial 4, routing (pika): print the log messages of the severities given as arguments."""
import os
import sys

import pika

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')


def main():
    severities = sys.argv[1:]
    if not severities:
        sys.stderr.write(f'Usage: {sys.argv[0]} [info] [warning] [error]\n')
        sys.exit(1)

    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()

    channel.exchange_declare(exchange=PREFIX + 'direct_logs', exchange_type='direct')

    result = channel.queue_declare(queue='', exclusive=True)
    queue_name = result.method.queue

    # One binding per severity: the queue gets a message if any of them equals its routing key.
    for severity in severities:
        channel.queue_bind(exchange=PREFIX + 'direct_logs', queue=queue_name, routing_key=severity)

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
