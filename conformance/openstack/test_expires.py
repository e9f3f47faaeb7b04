"""x-expires on reply and fanout queues: what is left behind by a client that went away or a
server that crashed disappears once unused for rabbit_transient_queues_ttl.

The queues are looked at once before and once after the TTL: on RabbitMQ a (passive) declare
counts as a use and renews the lease, so polling them would keep them alive."""

import time

import minioslo
from conftest import start_rpc_server, wait_for
from test_rpc import Recorder, consumers

TTL = 2          # seconds; the queues are checked once within it, once well after


def test_reply_queue_of_a_gone_client_expires(make_transport, names, admin):
    start_rpc_server(make_transport, names, 'host-a', Recorder('host-a'))
    wait_for(lambda: consumers(admin, names.topic) == 1, what='the server')
    transport = make_transport(rabbit_transient_queues_ttl=TTL)
    client = minioslo.RPCClient(transport, minioslo.Target(topic=names.topic), timeout=10)
    assert client.call({}, 'add', a=1, b=2) == 3
    reply_q = transport.reply_q
    names.queues.add(reply_q)
    transport.cleanup()             # oslo leaves the reply queue to x-expires
    assert admin.queue(reply_q) == (0, 0)
    assert admin.redeclare_queue(reply_q, arguments={'x-expires': TTL * 1000}) is None
    time.sleep(TTL + 1.5)
    assert admin.queue(reply_q) is None


def test_fanout_queue_of_a_killed_server_expires(broker, names, admin, workers):
    worker = workers('rpc', broker.url, names.exchange, 'host-a', names.topic,
                     '--ttl', str(TTL))
    fanout_queue = worker.expect('ready')['fanout_queue']
    names.server_queues('host-a')
    names.queues.add(fanout_queue)
    wait_for(lambda: consumers(admin, names.topic) == 1, what='the server')
    worker.kill()                   # SIGKILL: no chance to delete its fanout queue
    wait_for(lambda: consumers(admin, names.topic) == 0, what='the server to be gone')
    assert admin.queue(fanout_queue) == (0, 0)
    time.sleep(TTL + 1.5)
    assert admin.queue(fanout_queue) is None
    assert admin.queue(names.topic) == (0, 0)             # no x-expires there
    assert admin.queue(f'{names.topic}.host-a') == (0, 0)


def test_queues_in_use_do_not_expire(make_transport, names, admin):
    """x-expires counts from the last use: a reply queue and a fanout queue with consumers
    live on however long, with TTL 1 s."""
    ttl = 1
    recorder = Recorder('host-a')
    server = start_rpc_server(make_transport, names, 'host-a', recorder,
                              rabbit_transient_queues_ttl=ttl)
    transport = make_transport(rabbit_transient_queues_ttl=ttl)
    client = minioslo.RPCClient(transport, minioslo.Target(topic=names.topic), timeout=10)
    assert client.call({}, 'add', a=1, b=2) == 3
    time.sleep(ttl * 3)
    assert admin.queue(transport.reply_q) == (0, 1)
    assert admin.queue(server.fanout_queue) == (0, 1)
    assert client.call({}, 'add', a=2, b=2) == 4
    client.prepare(fanout=True).cast({}, 'record', seq='fanout')
    wait_for(lambda: recorder.received == ['fanout'], what='the fanout cast')
    assert server.conn.reconnections == 0
