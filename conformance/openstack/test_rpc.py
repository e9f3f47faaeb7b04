"""RPC: call and cast over the control exchange, as nova-api calls nova-compute."""

import re
import threading
import time

import pytest

import minioslo
from conftest import start_rpc_server, wait_for

X_EXPIRES = {'x-expires': 1800000}      # rabbit_transient_queues_ttl = 1800 s


class Recorder:
    """An RPC endpoint: methods take (ctxt, **args), their return value is the reply."""

    def __init__(self, name):
        self.name = name
        self.received = []
        self.lock = threading.Lock()

    def add(self, ctxt, a, b):
        return a + b

    def whoami(self, ctxt):
        return self.name

    def context(self, ctxt):
        return ctxt

    def record(self, ctxt, seq):
        with self.lock:
            self.received.append(seq)

    def fail(self, ctxt, why):
        raise ValueError(why)

    def slow(self, ctxt, seconds):
        time.sleep(seconds)
        return self.name


def consumers(admin, queue):
    info = admin.queue(queue)
    return info[1] if info else None


def client_for(transport, names, timeout=10):
    return minioslo.RPCClient(transport, minioslo.Target(topic=names.topic), timeout=timeout)


@pytest.mark.parametrize('reply_exchange', ['default', 'msg_id'])
def test_call_returns_the_servers_result(make_transport, names, admin, reply_exchange):
    """call() to the topic and to a given server; concurrent callers each get their own reply;
    the reply queue is reply_<uuid> with x-expires 1800000; replies go to the default exchange
    (oslo >= 9.8) or, older oslo, to an auto-delete direct exchange named like the queue."""
    for host in ('host-a', 'host-b'):
        start_rpc_server(make_transport, names, host, Recorder(host))
    wait_for(lambda: consumers(admin, names.topic) == 2, what='2 consumers on the topic queue')
    transport = make_transport(reply_exchange=reply_exchange)
    client = client_for(transport, names)

    assert client.call({'request_id': 'req-1'}, 'add', a=2, b=3) == 5
    assert client.call({'request_id': 'req-2', 'user': 'u'}, 'context') == {
        'request_id': 'req-2', 'user': 'u'}
    assert client.prepare(server='host-b').call({}, 'whoami') == 'host-b'
    assert client.prepare(server='host-a').call({}, 'whoami') == 'host-a'

    results, errors = {}, []

    def caller(n):
        try:
            for i in range(5):
                results[(n, i)] = client.call({}, 'add', a=n * 100, b=i)
        except Exception as e:      # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert results == {(n, i): n * 100 + i for n in range(4) for i in range(5)}

    reply_q = transport.reply_q
    names.queues.add(reply_q)
    assert re.fullmatch(r'reply_[0-9a-f]{32}', reply_q)
    assert admin.queue(reply_q) == (0, 1)
    assert admin.redeclare_queue(reply_q, arguments=X_EXPIRES) is None
    code, text = admin.redeclare_queue(reply_q)
    assert code == 406 and 'x-expires' in text
    if reply_exchange == 'msg_id':
        names.exchanges.add(reply_q)
        assert admin.exchange_exists(reply_q)
        assert admin.redeclare_exchange(reply_q, 'direct', auto_delete=True) is None
        assert admin.redeclare_exchange(reply_q, 'direct', auto_delete=False)[0] == 406
    else:
        assert not admin.exchange_exists(reply_q)


def test_call_raises_the_servers_exception(make_transport, names, admin):
    start_rpc_server(make_transport, names, 'host-a', Recorder('host-a'))
    wait_for(lambda: consumers(admin, names.topic) == 1, what='the server')
    client = client_for(make_transport(), names)
    with pytest.raises(minioslo.RemoteError) as info:
        client.call({}, 'fail', why='no valid host')
    assert info.value.exc_type == 'ValueError' and info.value.value == 'no valid host'
    assert client.call({}, 'add', a=1, b=1) == 2


def test_call_times_out_when_no_server_listens(make_transport, names):
    client = client_for(make_transport(), names, timeout=1)
    t = time.monotonic()
    with pytest.raises(minioslo.MessagingTimeout):
        client.call({}, 'add', a=1, b=2)
    assert 1 <= time.monotonic() - t < 3


def test_call_request_expires_in_the_queue_of_a_stopped_server(make_transport, names, admin):
    """A call publishes with expiration = its timeout: when the servers are gone the request
    waits in the topic queue, the caller times out, and the request expires there instead of
    being run by the next server to start."""
    server = start_rpc_server(make_transport, names, 'host-a', Recorder('host-a'))
    wait_for(lambda: consumers(admin, names.topic) == 1, what='the server')
    server.stop()
    assert admin.queue(names.topic) == (0, 0)       # not auto-delete: it outlives the server

    client = client_for(make_transport(), names, timeout=2)
    outcome = []

    def call():
        try:
            outcome.append(client.call({}, 'record', seq='expired'))
        except minioslo.MessagingTimeout as e:
            outcome.append(e)

    t = threading.Thread(target=call)
    t.start()
    wait_for(lambda: admin.queue(names.topic) == (1, 0), timeout=1.5,
             what='the request in the topic queue')
    t.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], minioslo.MessagingTimeout)
    wait_for(lambda: admin.queue(names.topic) == (0, 0), timeout=3,
             what='the expired request to leave the queue')

    later = Recorder('host-b')
    start_rpc_server(make_transport, names, 'host-b', later)
    wait_for(lambda: consumers(admin, names.topic) == 1, what='the new server')
    client.cast({}, 'record', seq='after')
    wait_for(lambda: later.received, what='the cast')
    time.sleep(0.2)
    assert later.received == ['after']


def test_cast_goes_round_robin_over_the_servers(make_transport, names, admin):
    recorders = {h: Recorder(h) for h in ('host-a', 'host-b', 'host-c')}
    for host, rec in recorders.items():
        start_rpc_server(make_transport, names, host, rec)
    wait_for(lambda: consumers(admin, names.topic) == 3, what='3 consumers on the topic queue')
    client = client_for(make_transport(), names)
    for seq in range(12):
        client.cast({}, 'record', seq=seq)
    wait_for(lambda: sum(len(r.received) for r in recorders.values()) == 12,
             what='12 casts handled')
    time.sleep(0.2)
    got = {h: r.received for h, r in recorders.items()}
    assert sorted(s for r in got.values() for s in r) == list(range(12)), got
    assert all(len(r) == 4 for r in got.values()), got
    owner = {seq: h for h, r in got.items() for seq in r}
    # Strict rotation: the server of cast n also gets n + 3, n + 6, n + 9.
    assert all(owner[s] == owner[s % 3] for s in range(12)), got
    assert all(r == sorted(r) for r in got.values()), got


def test_cast_to_one_server_uses_its_own_queue(make_transport, names, admin):
    recorders = {h: Recorder(h) for h in ('host-a', 'host-b')}
    for host, rec in recorders.items():
        start_rpc_server(make_transport, names, host, rec)
    wait_for(lambda: consumers(admin, names.topic) == 2, what='2 consumers on the topic queue')
    client = client_for(make_transport(), names)
    for seq in range(4):
        client.prepare(server='host-b').cast({}, 'record', seq=seq)
    wait_for(lambda: len(recorders['host-b'].received) == 4, what='4 casts on host-b')
    time.sleep(0.2)
    assert recorders['host-b'].received == [0, 1, 2, 3]
    assert recorders['host-a'].received == []
    assert admin.queue(f'{names.topic}.host-b') == (0, 1)


def test_topology_flags(make_transport, names, admin):
    """What oslo declares, as RabbitMQ's equivalence checks see it: a redeclaration with the
    same flags passes, a different one is refused with 406 PRECONDITION_FAILED."""
    server = start_rpc_server(make_transport, names, 'host-a', Recorder('host-a'))
    wait_for(lambda: consumers(admin, names.topic) == 1, what='the server')
    topic, exchange = names.topic, names.exchange

    # The control exchange: topic, non-durable, not auto-delete.
    assert admin.redeclare_exchange(exchange, 'topic') is None
    code, text = admin.redeclare_exchange(exchange, 'topic', durable=True)
    assert code == 406 and 'durable' in text
    assert admin.redeclare_exchange(exchange, 'direct')[0] == 406

    # <topic> and <topic>.<server>: non-durable, not auto-delete, no arguments.
    for queue in (topic, f'{topic}.host-a'):
        assert admin.queue(queue) == (0, 1), queue
        assert admin.redeclare_queue(queue) is None, queue
        code, text = admin.redeclare_queue(queue, durable=True)
        assert code == 406 and 'durable' in text, (queue, text)
        code, text = admin.redeclare_queue(queue, arguments=X_EXPIRES)
        assert code == 406 and 'x-expires' in text, (queue, text)

    # <topic>_fanout: fanout, auto-delete; <topic>_fanout_<uuid>: x-expires, not auto-delete.
    fanout = f'{topic}_fanout'
    assert admin.redeclare_exchange(fanout, 'fanout', auto_delete=True) is None
    code, text = admin.redeclare_exchange(fanout, 'fanout', auto_delete=False)
    assert code == 406 and 'auto_delete' in text
    queue = server.fanout_queue
    assert re.fullmatch(rf'{re.escape(fanout)}_[0-9a-f]{{32}}', queue)
    assert admin.queue(queue) == (0, 1)
    assert admin.redeclare_queue(queue, arguments=X_EXPIRES) is None
    code, text = admin.redeclare_queue(queue)
    assert code == 406 and 'x-expires' in text
    assert admin.redeclare_queue(queue, arguments={'x-expires': 1000})[0] == 406
    assert admin.redeclare_queue(queue, auto_delete=True, arguments=X_EXPIRES)[0] == 406


def test_durable_configured_services_join_a_non_durable_control_exchange(make_transport, names,
                                                                        admin):
    """Services disagree on amqp_durable_queues. The first made the control exchange
    non-durable; the durable-configured ones get 406 "PRECONDITION_FAILED - inequivalent arg
    'durable'", which oslo recognises by that text, and declare non-durable instead."""
    start_rpc_server(make_transport, names, 'host-a', Recorder('host-a'))
    wait_for(lambda: consumers(admin, names.topic) == 1, what='host-a')
    start_rpc_server(make_transport, names, 'host-b', Recorder('host-b'),
                     amqp_durable_queues=True)
    wait_for(lambda: consumers(admin, names.topic) == 2, what='host-b on the shared queue')
    client = client_for(make_transport(amqp_durable_queues=True), names)
    assert client.prepare(server='host-b').call({}, 'whoami') == 'host-b'
    assert client.prepare(server='host-a').call({}, 'whoami') == 'host-a'
    assert {client.call({}, 'whoami') for _ in range(4)} == {'host-a', 'host-b'}
    assert admin.redeclare_exchange(names.exchange, 'topic') is None
    assert admin.redeclare_queue(f'{names.topic}.host-b') is None


@pytest.mark.parametrize('reply_exchange', ['default', 'msg_id'])
def test_reply_to_a_vanished_client_is_abandoned(make_transport, names, admin, reply_exchange):
    """The caller times out and its reply queue goes away (as x-expires does it) while the
    server still works. The server's reply is refused (default exchange: published mandatory,
    basic.return; msg_id exchange: the auto-delete exchange went with the queue, 404), retried
    for kombu_missing_consumer_retry_timeout, then dropped; the server goes on serving."""
    server = start_rpc_server(make_transport, names, 'host-a', Recorder('host-a'),
                              reply_exchange=reply_exchange,
                              kombu_missing_consumer_retry_timeout=1)
    wait_for(lambda: consumers(admin, names.topic) == 1, what='the server')
    gone = make_transport(reply_exchange=reply_exchange)
    with pytest.raises(minioslo.MessagingTimeout):
        client_for(gone, names, timeout=0.5).call({}, 'slow', seconds=1.5)
    reply_q = gone.reply_q
    gone.cleanup()
    admin.delete_queue(reply_q)
    if reply_exchange == 'msg_id':
        assert not admin.exchange_exists(reply_q)      # auto-delete: went with its binding
    wait_for(lambda: reply_q in server.abandoned_replies, timeout=10,
             what='the server to give up on the reply')
    assert server.undeliverable_replies >= 2

    client = client_for(make_transport(reply_exchange=reply_exchange), names)
    assert client.call({}, 'add', a=20, b=22) == 42
