#!/usr/bin/env python
"""Tutorial 6, RPC (pika): answer fib(n) requests from 'rpc_queue' to each request's reply_to."""
import os
import sys

import pika

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')


def fib(n):
    if n == 0:
        return 0
    if n == 1:
        return 1
    return fib(n - 1) + fib(n - 2)


def main():
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()

    channel.queue_declare(queue=PREFIX + 'rpc_queue')

    def on_request(ch, method, props, body):
        n = int(body)
        print(f' [.] fib({n})')
        response = fib(n)

        ch.basic_publish(
            exchange='',
            routing_key=props.reply_to,
            properties=pika.BasicProperties(correlation_id=props.correlation_id),
            body=str(response),
        )
        ch.basic_ack(delivery_tag=method.delivery_tag)

    # Spread requests evenly when several servers run.
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(queue=PREFIX + 'rpc_queue', on_message_callback=on_request)

    print(' [x] Awaiting RPC requests')
    channel.start_consuming()


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        print('Interrupted')
        sys.exit(0)
