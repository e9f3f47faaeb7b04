"""Fixtures for the tutorial tests (see README.md one directory up).

Every test runs once per client library (`pika`, `kombu`); the programs of both live in
`<client>_tutorials/`, take the same arguments and print the same lines, so one test body checks
both. Each test gets its own TUTORIAL_PREFIX for queue and exchange names, so tests (and runs
against a shared RabbitMQ) do not see each other's queues and exchanges.

The broker: the one at AMQP_URL when it is set (a running RabbitMQ, or the rmqd that
`cargo test --test tutorials` starts); otherwise rmqd started by the pytest-rmqd plugin
(python/pytest-rmqd: --rmqd-bin=PATH or RMQD_BIN), one per session, and each test has a vhost
of its own there.
"""

import os
import uuid

import pytest

from support import CLIENTS, Broker, Tutorials


@pytest.fixture
def amqp_url(request):
    """The URL the test and its programs connect to."""
    url = os.environ.get('AMQP_URL')
    if url:
        return url
    if not request.config.pluginmanager.has_plugin('rmqd'):
        pytest.fail('no broker: set AMQP_URL, or install the pytest-rmqd plugin '
                    '(pip install ./python/pytest-rmqd) and give it rmqd (--rmqd-bin=PATH or '
                    'RMQD_BIN)', pytrace=False)
    return request.getfixturevalue('rmqd_vhost').url


@pytest.fixture(params=CLIENTS)
def tutorials(request, amqp_url):
    prefix = f'tut-{uuid.uuid4().hex[:8]}-'
    t = Tutorials(request.param, prefix, amqp_url)
    yield t
    t.stop_all()
    if not os.environ.get('AMQP_URL'):
        return          # the test's own vhost: deleted with everything in it
    # Delete what the test left behind (durable queues, exchanges), as a courtesy to a shared
    # broker. Not part of what is tested: failures here are ignored.
    try:
        with Broker(amqp_url) as broker:
            for queue in ('hello', 'task_queue', 'rpc_queue'):
                broker.close_code(lambda ch: ch.queue_delete(t.name(queue)))
            for exchange in ('logs', 'direct_logs', 'topic_logs'):
                broker.close_code(lambda ch: ch.exchange_delete(t.name(exchange)))
    except Exception:
        pass


@pytest.fixture
def broker(amqp_url):
    with Broker(amqp_url) as b:
        yield b
