#!/usr/bin/env python
"""Tutorial 6, RPC (pika): ask the RPC server for fib(n) and wait for the answer."""
import os
import sys
import uuid

import pika

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')


class FibonacciRpcClient:
    def __init__(self):
        self.connection = pika.BlockingConnection(pika.URLParameters(URL))
        self.channel = self.connection.channel()

        # The callback queue: server-named, only ours, gone when we disconnect.
        result = self.channel.queue_declare(queue='', exclusive=True)
        self.callback_queue = result.method.queue

        self.channel.basic_consume(
            queue=self.callback_queue, on_message_callback=self.on_response, auto_ack=True
        )

        self.response = None
        self.corr_id = None

    def on_response(self, ch, method, props, body):
        # A reply to some earlier call (e.g. one that timed out) is not ours: ignore it.
        if self.corr_id == props.correlation_id:
            self.response = body

    def call(self, n):
        self.response = None
        self.corr_id = str(uuid.uuid4())
        self.channel.basic_publish(
            exchange='',
            routing_key=PREFIX + 'rpc_queue',
            properties=pika.BasicProperties(reply_to=self.callback_queue, correlation_id=self.corr_id),
            body=str(n),
        )
        while self.response is None:
            self.connection.process_data_events(time_limit=None)
        return int(self.response)

    def close(self):
        self.connection.close()


if __name__ == '__main__':
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    fibonacci_rpc = FibonacciRpcClient()
    print(f' [x] Requesting fib({n})')
    response = fibonacci_rpc.call(n)
    print(f' [.] Got {response}')
    fibonacci_rpc.close()
