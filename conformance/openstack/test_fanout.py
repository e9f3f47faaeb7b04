"""fanout_cast: every server of the topic gets it, through a queue of its own."""

import time

import minioslo
from conftest import start_rpc_server, wait_for
from test_rpc import Recorder


def fanout_client(transport, names):
    return minioslo.RPCClient(transport, minioslo.Target(topic=names.topic)).prepare(fanout=True)


def test_fanout_cast_reaches_every_server(make_transport, names, admin):
    recorders = {h: Recorder(h) for h in ('host-a', 'host-b', 'host-c')}
    servers = [start_rpc_server(make_transport, names, h, r) for h, r in recorders.items()]
    queues = [s.fanout_queue for s in servers]
    assert len(set(queues)) == 3
    for q in queues:
        wait_for(lambda: admin.queue(q) == (0, 1), what=f'a consumer on {q}')
    client = fanout_client(make_transport(), names)
    for seq in range(3):
        client.cast({}, 'record', seq=seq)
    wait_for(lambda: all(len(r.received) == 3 for r in recorders.values()),
             what='every server to get the 3 fanout casts')
    time.sleep(0.2)
    assert {h: r.received for h, r in recorders.items()} == {h: [0, 1, 2] for h in recorders}
    # Nothing went through the shared queues.
    assert admin.queue(names.topic) == (0, 3)


def test_fanout_queues_go_with_their_servers(make_transport, names, admin):
    """A fanout_cast before any server exists is dropped without error. A stopping server
    deletes its fanout queue; the auto-delete <topic>_fanout exchange goes with the last one."""
    client = fanout_client(make_transport(), names)
    client.cast({}, 'record', seq='nobody')
    client.cast({}, 'record', seq='nobody either')

    a, b = Recorder('host-a'), Recorder('host-b')
    server_a = start_rpc_server(make_transport, names, 'host-a', a)
    server_b = start_rpc_server(make_transport, names, 'host-b', b)
    queue_a, queue_b = server_a.fanout_queue, server_b.fanout_queue
    wait_for(lambda: admin.queue(queue_a) == (0, 1) and admin.queue(queue_b) == (0, 1),
             what='both fanout consumers')

    server_a.stop()
    assert admin.queue(queue_a) is None
    assert admin.exchange_exists(f'{names.topic}_fanout')
    client.cast({}, 'record', seq='b only')
    wait_for(lambda: b.received == ['b only'], what='the fanout on host-b')
    assert a.received == []

    server_b.stop()
    assert admin.queue(queue_b) is None
    wait_for(lambda: not admin.exchange_exists(f'{names.topic}_fanout'), timeout=2,
             what='the auto-delete fanout exchange to go with its last binding')
    # The shared topic queues are not auto-delete: they stay, without consumers.
    assert admin.queue(names.topic) == (0, 0)
