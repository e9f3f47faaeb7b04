"""Tutorial 6, RPC: rpc_client.py sends n to 'rpc_queue' with reply_to (its exclusive callback
queue) and a correlation_id; rpc_server.py answers fib(n) there with the same correlation_id."""

import importlib.util
import json
import time
import uuid

import pika
import pytest

from support import HERE, PATIENCE, decode_body

FIB = [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181, 6765]


def test_clients_get_fib_of_their_own_n(tutorials):
    # Two servers share the work (prefetch_count=1 each); every request is answered once.
    servers = tutorials.consumers([('rpc_server',), ('rpc_server',)])
    ns = [0, 1, 2, 7, 10, 15, 18, 20]
    clients = tutorials.run_all([('rpc_client', n) for n in ns])
    for n, client in zip(ns, clients):
        assert client.matches(rf' \[x\] Requesting fib\({n}\)'), client.describe()
        assert client.matches(rf' \[\.\] Got {FIB[n]}'), client.describe()
    served = sorted(int(m.group(1)) for s in servers for m in s.matches(r' \[\.\] fib\((\d+)\)'))
    assert served == sorted(ns), tutorials.describe()


def test_server_replies_to_reply_to_with_the_request_correlation_id(tutorials, broker):
    tutorials.consumer('rpc_server')
    channel = broker.channel()
    callback_queue = channel.queue_declare('', exclusive=True).method.queue

    requests = {f'request-{n}-{uuid.uuid4()}': n for n in (3, 9, 12)}
    for correlation_id, n in requests.items():
        channel.basic_publish(
            exchange='',
            routing_key=tutorials.name('rpc_queue'),
            # JSON, so that kombu's server decodes it; pika's server takes int() of it as well.
            properties=pika.BasicProperties(
                reply_to=callback_queue, correlation_id=correlation_id,
                content_type='application/json',
            ),
            body=json.dumps(n),
        )

    replies = {}
    for method, properties, body in channel.consume(callback_queue, auto_ack=True,
                                                    inactivity_timeout=PATIENCE):
        assert method is not None, f'replies so far: {replies}'
        replies[properties.correlation_id] = int(decode_body(properties, body))
        if len(replies) == len(requests):
            break
    channel.cancel()
    assert replies == {c: FIB[n] for c, n in requests.items()}


def load_client(tutorials, monkeypatch):
    """Import the tutorial's rpc_client.py as a module, configured like its subprocesses."""
    monkeypatch.setenv('AMQP_URL', tutorials.env['AMQP_URL'])
    monkeypatch.setenv('TUTORIAL_PREFIX', tutorials.prefix)
    path = HERE / f'{tutorials.client}_tutorials' / 'rpc_client.py'
    spec = importlib.util.spec_from_file_location(f'{tutorials.client}_rpc_client', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_client_ignores_replies_with_another_correlation_id(tutorials, broker, monkeypatch):
    tutorials.consumer('rpc_server')
    client = load_client(tutorials, monkeypatch).FibonacciRpcClient()
    try:
        assert client.callback_queue.startswith('amq.gen-'), client.callback_queue
        # A stale reply waiting in the callback queue before the call is made.
        broker.channel().basic_publish(
            exchange='',
            routing_key=client.callback_queue,
            properties=pika.BasicProperties(correlation_id='stale', content_type='application/json'),
            body=json.dumps(999),
        )
        time.sleep(0.2)
        assert client.call(10) == 55
        assert client.call(11) == 89
    finally:
        client.close()
