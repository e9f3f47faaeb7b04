"""Notifications: Notifier.info() publishes to the control exchange with routing key
notifications.info, into a queue of that name the notifier declares itself."""

import json
import threading
import time

import pytest

import minioslo
from conftest import wait_for


@pytest.fixture
def notification_queues(names, admin):
    """notifications.<priority> have fixed names: start from none, delete them afterwards."""
    queues = ['notifications.info', 'notifications.error']
    for q in queues:
        admin.delete_queue(q)
    names.queues.update(queues)
    return queues


class Collector:
    def __init__(self):
        self.got = []
        self.lock = threading.Lock()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        with self.lock:
            self.got.append((publisher_id, event_type, payload, ctxt))


def test_notification_lands_in_notifications_info(make_transport, names, admin,
                                                   notification_queues):
    notifier = minioslo.Notifier(make_transport(), 'compute.host-a')
    message_id = notifier.info({'request_id': 'req-1'}, 'compute.instance.create.end',
                               {'instance_id': 'i-1', 'state': 'active'})

    # Nobody listens yet: the notification waits in notifications.info, non-durable, not
    # auto-delete, without arguments.
    assert admin.queue('notifications.info') == (1, 0)
    assert admin.redeclare_queue('notifications.info') is None
    assert admin.redeclare_queue('notifications.info', durable=True)[0] == 406

    raw = admin.get('notifications.info')
    assert raw.delivery_info['exchange'] == names.exchange
    assert raw.delivery_info['routing_key'] == 'notifications.info'
    assert raw.properties['content_type'] == 'application/json'
    envelope = json.loads(raw.body)
    assert envelope['oslo.version'] == '2.0'
    msg = json.loads(envelope['oslo.message'])
    assert msg['message_id'] == message_id
    assert msg['event_type'] == 'compute.instance.create.end'
    assert msg['priority'] == 'INFO'
    assert msg['publisher_id'] == 'compute.host-a'
    assert msg['payload'] == {'instance_id': 'i-1', 'state': 'active'}
    assert msg['_context_request_id'] == 'req-1'
    assert len(msg['_unique_id']) == 32

    # Other priorities have their own queue.
    notifier.error({}, 'compute.instance.create.error', {'instance_id': 'i-2'})
    assert admin.queue('notifications.error') == (1, 0)
    assert admin.queue('notifications.info') == (0, 0)


def test_listener_gets_queued_then_live_notifications(make_transport, names, admin,
                                                      notification_queues):
    notifier = minioslo.Notifier(make_transport(), 'compute.host-a')
    for i in range(3):
        notifier.info({}, 'early', {'n': i})
    assert admin.queue('notifications.info') == (3, 0)

    collector = Collector()
    listener = minioslo.NotificationListener(
        make_transport(), [minioslo.Target(topic='notifications')], [collector]).start()
    make_transport.servers.append(listener)
    wait_for(lambda: len(collector.got) == 3, what='the 3 queued notifications')
    for i in range(3, 5):
        notifier.info({'user': 'u'}, 'live', {'n': i})
    wait_for(lambda: len(collector.got) == 5, what='the live notifications')
    time.sleep(0.2)
    assert [(e, p['n']) for _, e, p, _ in collector.got] == [
        ('early', 0), ('early', 1), ('early', 2), ('live', 3), ('live', 4)]
    assert collector.got[-1][3] == {'user': 'u'}
    # Acked once handled; the listener is the queue's consumer.
    wait_for(lambda: admin.queue('notifications.info') == (0, 1), what='all acked')
