"""pika (BlockingConnection) against the test's own vhost."""

import pika
import pytest


def test_declare_publish_get(rmqd_vhost):
    connection = pika.BlockingConnection(rmqd_vhost.pika_parameters())
    try:
        channel = connection.channel()
        channel.queue_declare('greetings', durable=True)
        channel.basic_publish('', 'greetings', b'hello',
                              pika.BasicProperties(content_type='text/plain', delivery_mode=2,
                                                   headers={'n': 1}))
        channel.basic_publish('', 'greetings', b'world')
        method, properties, body = channel.basic_get('greetings', auto_ack=True)
        assert body == b'hello'
        assert properties.content_type == 'text/plain'
        assert properties.delivery_mode == 2
        assert properties.headers == {'n': 1}
        assert method.message_count == 1          # "world" is still there
        assert channel.basic_get('greetings', auto_ack=True)[2] == b'world'
        assert channel.basic_get('greetings', auto_ack=True) == (None, None, None)
    finally:
        connection.close()


def test_pika_parameters_pass_options(rmqd_vhost):
    params = rmqd_vhost.pika_parameters(heartbeat=7, connection_attempts=2)
    assert params.virtual_host == rmqd_vhost.name
    assert (params.host, params.port) == (rmqd_vhost.host, rmqd_vhost.port)
    assert params.heartbeat == 7
    connection = pika.BlockingConnection(params)
    try:
        assert connection.is_open
    finally:
        connection.close()


def test_wrong_password_is_refused(rmqd_vhost):
    url = rmqd_vhost.url.replace(f':{rmqd_vhost.password}@', ':not-the-password@')
    assert url != rmqd_vhost.url
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(pika.URLParameters(url))
