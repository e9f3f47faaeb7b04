#!/usr/bin/env python
"""Tutorial 6, RPC (kombu): answer fib(n) requests from 'rpc_queue' to each request's reply_to."""
import os
import sys

from kombu import Connection, Queue

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')

rpc_queue = Queue(PREFIX + 'rpc_queue')


def fib(n):
    if n == 0:
        return 0
    if n == 1:
        return 1
    return fib(n - 1) + fib(n - 2)


def main():
    with Connection(URL) as connection:
        producer = connection.Producer()

        def on_request(body, message):
            n = int(body)
            print(f' [.] fib({n})')
            response = fib(n)

            producer.publish(
                response,
                exchange='',
                routing_key=message.properties['reply_to'],
                correlation_id=message.properties['correlation_id'],
            )
            message.ack()

        # Spread requests evenly when several servers run.
        with connection.Consumer(rpc_queue, callbacks=[on_request], prefetch_count=1):
            print(' [x] Awaiting RPC requests')
            while True:
                connection.drain_events()


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        print('Interrupted')
        sys.exit(0)
