"""The broker restarts (SIGTERM, then started again on the same port) under running services.
Everything oslo declared was transient and is gone; kombu's ensure/autoretry reconnects each
connection and the revive callback re-declares its exchanges, queues and bindings and consumes
again. Calls, casts, fanouts and notifications then work as before; a notification sent while
the broker is down waits for it and is delivered.

The restart test runs only when the suite starts the broker itself (RMQD_BIN): it cannot
restart someone else's. The others recover from smaller accidents and run everywhere."""

import threading
import time

import pytest

import minioslo
from conftest import Admin, start_rpc_server, wait_for
from test_notifications import Collector
from test_rpc import Recorder


def test_services_reconnect_after_a_broker_restart(broker, names, make_transport):
    if not broker.owned:
        pytest.skip('restarts the broker: runs only when the suite starts it (RMQD_BIN)')
    admin = Admin(broker.url)
    admin.delete_queue('notifications.info')
    admin.close()
    names.queues.add('notifications.info')

    recorder = Recorder('host-a')
    server = start_rpc_server(make_transport, names, 'host-a', recorder)
    collector = Collector()
    listener = minioslo.NotificationListener(
        make_transport(), [minioslo.Target(topic='notifications')], [collector]).start()
    make_transport.servers.append(listener)
    client_transport = make_transport()
    client = minioslo.RPCClient(client_transport, minioslo.Target(topic=names.topic),
                                timeout=10)
    notifier = minioslo.Notifier(make_transport(), 'compute.host-a')
    fanout_queue = server.fanout_queue

    def topology_ready():
        a = Admin(broker.url)
        try:
            return all(a.queue(q) == (0, 1) for q in (
                names.topic, f'{names.topic}.host-a', fanout_queue,
                client_transport.reply_q, 'notifications.info'))
        finally:
            a.close()

    assert client.call({}, 'add', a=1, b=2) == 3
    wait_for(topology_ready, what='every queue with its consumer')

    def round_trip(tag):
        assert client.call({}, 'add', a=tag, b=1) == tag + 1
        client.cast({}, 'record', seq=f'cast {tag}')
        client.prepare(fanout=True).cast({}, 'record', seq=f'fanout {tag}')
        notifier.info({}, 'round.trip', {'tag': tag})
        wait_for(lambda: f'cast {tag}' in recorder.received
                 and f'fanout {tag}' in recorder.received, what=f'cast and fanout {tag}')
        wait_for(lambda: any(e == 'round.trip' and p == {'tag': tag}
                             for _, e, p, _ in collector.got), what=f'notification {tag}')

    round_trip(1)

    stopped_in = broker.stop()
    sent = []
    during = threading.Thread(
        target=lambda: sent.append(notifier.info({}, 'during.outage', {'tag': 'down'})))
    during.start()
    time.sleep(1.0)
    assert sent == []               # blocked in kombu's retry loop while the broker is down
    broker.start()
    during.join(30)
    assert len(sent) == 1, 'the notification sent during the outage never went out'

    # The services find the broker again and declare everything anew.
    wait_for(topology_ready, timeout=30, what='the topology to be re-declared')
    assert server.conn.reconnections >= 1
    assert listener.conn.reconnections >= 1
    assert client_transport.reply_connection.reconnections >= 1
    wait_for(lambda: any(e == 'during.outage' for _, e, _, _ in collector.got),
             what='the notification sent during the outage')

    round_trip(2)
    assert stopped_in < 5, f'rmqd took {stopped_in:.1f}s to stop on SIGTERM'


def test_server_recovers_when_its_queue_is_deleted(broker, names, admin, make_transport):
    """Someone deletes the shared topic queue under a running server. The broker cancels the
    consumer (basic.cancel: oslo asks for consumer_cancel_notify), py-amqp raises
    ConsumerCancelled, a recoverable error: kombu reconnects and the server declares the queue
    again and consumes from it."""
    recorder = Recorder('host-a')
    server = start_rpc_server(make_transport, names, 'host-a', recorder)
    wait_for(lambda: admin.queue(names.topic) == (0, 1), what='the server')
    admin.delete_queue(names.topic)
    wait_for(lambda: admin.queue(names.topic) == (0, 1), timeout=15,
             what='the server to declare its queue again')
    assert server.conn.reconnections >= 1
    client = minioslo.RPCClient(make_transport(), minioslo.Target(topic=names.topic),
                                timeout=10)
    assert client.call({}, 'add', a=2, b=2) == 4


def test_idle_connections_keep_their_heartbeats(broker, names, admin, make_transport):
    """heartbeat_timeout_threshold = 2 (oslo's default is 60): kombu sends heartbeats and
    checks the broker's. Connections idle for 3 heartbeat periods stay up, unreconnected."""
    recorder = Recorder('host-a')
    server = start_rpc_server(make_transport, names, 'host-a', recorder,
                              heartbeat_timeout_threshold=2)
    transport = make_transport(heartbeat_timeout_threshold=2)
    client = minioslo.RPCClient(transport, minioslo.Target(topic=names.topic), timeout=10)
    assert client.call({}, 'add', a=1, b=1) == 2
    for conn in (server.conn, transport.reply_connection, transport.send_connection()):
        assert conn.connection.connection.heartbeat == 2
    time.sleep(6)
    assert client.call({}, 'add', a=2, b=3) == 5
    assert server.conn.reconnections == 0
    assert transport.reply_connection.reconnections == 0
    assert transport.send_connection().reconnections == 0
