"""Fixtures for the tutorial tests (see README.md one directory up).

Every test runs once per client library (`pika`, `kombu`); the programs of both live in
`<client>_tutorials/`, take the same arguments and print the same lines, so one test body checks
both. Each test gets its own TUTORIAL_PREFIX for queue and exchange names, so tests (and runs
against a shared RabbitMQ) do not see each other's queues and exchanges.
"""

import uuid

import pytest

from support import CLIENTS, Broker, Tutorials


@pytest.fixture(params=CLIENTS)
def tutorials(request):
    prefix = f'tut-{uuid.uuid4().hex[:8]}-'
    t = Tutorials(request.param, prefix)
    yield t
    t.stop_all()
    # Delete what the test left behind (durable queues, exchanges), as a courtesy to a shared
    # broker. Not part of what is tested: failures here are ignored.
    try:
        with Broker() as broker:
            for queue in ('hello', 'task_queue', 'rpc_queue'):
                broker.close_code(lambda ch: ch.queue_delete(t.name(queue)))
            for exchange in ('logs', 'direct_logs', 'topic_logs'):
                broker.close_code(lambda ch: ch.exchange_delete(t.name(exchange)))
    except Exception:
        pass

@pytest.fixture
def broker():
    with Broker() as b:
        yield b
