#!/usr/bin/env python
"""Tutorial 6, RPC (kombu): ask the RPC server for fib(n) and wait for the answer."""
import os
import sys
import uuid

from kombu import Connection, Queue

URL = os.environ.get('AMQP_URL', 'amqp://guest:guest@localhost:5672/%2f')
PREFIX = os.environ.get('TUTORIAL_PREFIX', '')


class FibonacciRpcClient:
    def __init__(self):
        self.connection = Connection(URL)
        self.producer = self.connection.Producer()

        # The callback queue: server-named, only ours, gone when we disconnect.
        self.consumer = self.connection.Consumer(
            Queue('', exclusive=True), callbacks=[self.on_response], no_ack=True
        )
        self.consumer.consume()
        self.callback_queue = self.consumer.queues[0].name

        self.response = None
        self.corr_id = None

    def on_response(self, body, message):
        # A reply to some earlier call (e.g. one that timed out) is not ours: ignore it.
        if self.corr_id == message.properties.get('correlation_id'):
            self.response = body

    def call(self, n):
        self.response = None
        self.corr_id = str(uuid.uuid4())
        self.producer.publish(
            n,
            exchange='',
            routing_key=PREFIX + 'rpc_queue',
            reply_to=self.callback_queue,
            correlation_id=self.corr_id,
        )
        while self.response is None:
            self.connection.drain_events()
        return int(self.response)

    def close(self):
        self.connection.release()


if __name__ == '__main__':
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    fibonacci_rpc = FibonacciRpcClient()
    print(f' [x] Requesting fib({n})')
    response = fibonacci_rpc.call(n)
    print(f' [.] Got {response}')
    fibonacci_rpc.close()
