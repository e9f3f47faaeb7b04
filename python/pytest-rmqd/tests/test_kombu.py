"""kombu (py-amqp transport): Producer, SimpleQueue, the vhost "/" URL form."""

import amqp
import pika
import pytest
from kombu import Connection, Exchange, Producer, Queue

from pytest_rmqd import Vhost


def test_producer_and_simple_queue(rmqd_vhost):
    with Connection(rmqd_vhost.kombu_url) as conn:
        conn.connect()
        assert conn.connection.virtual_host == rmqd_vhost.name   # what py-amqp sent
        exchange = Exchange('orders', type='direct', durable=False)
        queue = Queue('orders.new', exchange, routing_key='new', durable=False)
        producer = Producer(conn.channel(), exchange=exchange)
        for n in range(3):
            producer.publish({'order': n}, routing_key='new', declare=[queue],
                             serializer='json')
        producer.publish({'order': 'elsewhere'}, routing_key='other')   # unroutable: dropped
        simple = conn.SimpleQueue(queue)
        try:
            got = []
            for _ in range(3):
                message = simple.get(timeout=5)
                got.append(message.payload)
                message.ack()
            assert got == [{'order': 0}, {'order': 1}, {'order': 2}]
            with pytest.raises(simple.Empty):
                simple.get(timeout=0.3)
        finally:
            simple.close()


def test_simple_queue_round_trip(rmqd_vhost):
    with Connection(rmqd_vhost.kombu_url) as conn:
        queue = conn.SimpleQueue('jobs')
        try:
            queue.put({'job': 'resize', 'size': [640, 480]})
            message = queue.get(timeout=5)
            message.ack()
            assert message.payload == {'job': 'resize', 'size': [640, 480]}
            assert message.content_type == 'application/json'
        finally:
            queue.close()


def test_default_vhost_url_is_kombus_double_slash(rmqd):
    root = Vhost(rmqd, '/')
    assert root.kombu_url == f'amqp://guest:guest@{rmqd.host}:{rmqd.port}//'
    name = rmqd.unique_vhost_name('in-root')
    with Connection(root.kombu_url) as conn:
        conn.connect()
        assert conn.connection.virtual_host == '/'
        channel = conn.channel()
        channel.queue_declare(name, auto_delete=False)
    # The same queue, seen through rmqd.url (vhost "/" as %2F) with pika.
    connection = pika.BlockingConnection(pika.URLParameters(rmqd.url))
    try:
        channel = connection.channel()
        channel.queue_declare(name, passive=True)
        channel.queue_delete(name)
    finally:
        connection.close()


def test_kombu_reports_a_missing_queue(rmqd_vhost):
    with Connection(rmqd_vhost.kombu_url) as conn:
        with pytest.raises(amqp.exceptions.NotFound) as err:
            conn.channel().queue_declare('absent', passive=True)
        assert err.value.code == 404
