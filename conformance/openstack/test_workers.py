"""Notification workers with rabbit_qos_prefetch_count = 1 sharing notifications.info, as
ceilometer's agents do: a busy worker takes nothing more, and the notification of a worker
killed while handling it (not yet acked) goes to another worker."""

import threading

import pytest

import minioslo
from conftest import wait_for


@pytest.fixture
def info_queue(names, admin):
    admin.delete_queue('notifications.info')
    names.queues.add('notifications.info')
    return 'notifications.info'


def first_got(workers_, timeout=10):
    """The worker that reports a 'got' first, and the event."""
    def poll():
        for w in workers_:
            for e in w.drain():
                if e['event'] == 'got':
                    return w, e
        return None
    return wait_for(poll, timeout=timeout, interval=0.02, what="a worker's 'got'")


def test_prefetch_one_and_a_killed_worker(broker, names, admin, workers, make_transport,
                                          info_queue):
    a = workers('notify', broker.url, names.exchange, 'a', '--prefetch', '1')
    b = workers('notify', broker.url, names.exchange, 'b', '--prefetch', '1')
    a.expect('ready')
    b.expect('ready')
    wait_for(lambda: (admin.queue(info_queue) or (0, 0))[1] == 2, what='2 workers consuming')

    notifier = minioslo.Notifier(make_transport(), 'test')
    notifier.info({}, 'slow', {'id': 'slow', 'sleep': 60})
    holder, event = first_got([a, b])
    other = b if holder is a else a
    assert event == {'event': 'got', 'id': 'slow', 'redelivered': False}

    # The holder has its one unacked notification: the next ones all go to the other worker.
    for i in range(4):
        notifier.info({}, 'fast', {'id': f'fast-{i}'})
    for i in range(4):
        assert other.expect('got')['id'] == f'fast-{i}'
        assert other.expect('done')['id'] == f'fast-{i}'
    assert holder.drain(wait=0.3) == []
    assert admin.queue(info_queue) == (0, 2)

    holder.kill()          # SIGKILL in the middle of 'slow'
    event = other.expect('got', timeout=10)
    assert event == {'event': 'got', 'id': 'slow', 'redelivered': True}
    assert not any(e['event'] == 'done' and e['id'] == 'slow' for e in holder.seen)
    wait_for(lambda: admin.queue(info_queue) == (0, 1), what='the killed worker to be gone')


def test_rpc_request_is_acked_on_receipt_and_lost_with_its_server(broker, names, admin,
                                                                  workers, make_transport):
    """oslo acks an RPC request when it arrives, before running the method: when the server
    dies during the call, the request is not redelivered and the caller times out."""
    a = workers('rpc', broker.url, names.exchange, 'host-a', names.topic, '--prefetch', '1')
    b = workers('rpc', broker.url, names.exchange, 'host-b', names.topic, '--prefetch', '1')
    a.expect('ready')
    b.expect('ready')
    names.server_queues('host-a', 'host-b')
    wait_for(lambda: (admin.queue(names.topic) or (0, 0))[1] == 2, what='2 servers consuming')

    client = minioslo.RPCClient(make_transport(), minioslo.Target(topic=names.topic),
                                timeout=3)
    outcome = []

    def call():
        try:
            outcome.append(client.call({}, 'work', id='call-1', sleep=60))
        except minioslo.MessagingTimeout as e:
            outcome.append(e)

    t = threading.Thread(target=call)
    t.start()
    holder, event = first_got([a, b])
    other = b if holder is a else a
    assert event['id'] == 'call-1'
    holder.kill()
    t.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], minioslo.MessagingTimeout)
    assert other.drain(wait=0.3) == []
    wait_for(lambda: admin.queue(names.topic) == (0, 1), what='the killed server to be gone')
