"""What the per-test vhost gives: isolation, clean-up, closed connections on delete."""

import asyncio
import time

import aio_pika
import amqp
import kombu
import pika
import pytest


def passive_declare(url, queue):
    """(message_count) of `queue` in the vhost of `url`, or the reply code the broker closed
    the channel with (404 when there is no such queue)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        try:
            ok = channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as closed:
            return closed.reply_code, closed.reply_text
        return ok.method.message_count
    finally:
        if connection.is_open:
            connection.close()


def test_two_vhosts_are_isolated(rmqd, rmqd_vhost):
    other = rmqd.add_vhost()
    try:
        assert other.name != rmqd_vhost.name
        connection = pika.BlockingConnection(rmqd_vhost.pika_parameters())
        channel = connection.channel()
        channel.queue_declare('invoices')
        channel.basic_publish('', 'invoices', b'1')
        connection.close()

        assert passive_declare(rmqd_vhost.url, 'invoices') == 1
        code, text = passive_declare(other.url, 'invoices')
        assert code == 404
        assert text.startswith('NOT_FOUND')
        assert passive_declare(rmqd.url, 'invoices')[0] == 404      # nor in "/"

        # The same name in the other vhost is another queue, empty.
        connection = pika.BlockingConnection(other.pika_parameters())
        connection.channel().queue_declare('invoices')
        connection.close()
        assert passive_declare(other.url, 'invoices') == 0
        assert passive_declare(rmqd_vhost.url, 'invoices') == 1
    finally:
        other.delete()


def test_deleting_the_vhost_closes_its_connections(rmqd_vhost):
    connection = pika.BlockingConnection(rmqd_vhost.pika_parameters())
    channel = connection.channel()
    channel.queue_declare('work')
    rmqd_vhost.delete()
    deadline = time.monotonic() + 10
    with pytest.raises((pika.exceptions.ConnectionClosedByBroker,
                        pika.exceptions.StreamLostError)) as closed:
        while time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.1)
    assert not connection.is_open
    if isinstance(closed.value, pika.exceptions.ConnectionClosedByBroker):
        assert closed.value.reply_code == 320          # CONNECTION_FORCED, as RabbitMQ does

    # And the vhost is gone: no new connection to it.
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(rmqd_vhost.pika_parameters(connection_attempts=1))


def test_kombu_connection_notices_the_deleted_vhost(rmqd_vhost):
    conn = kombu.Connection(rmqd_vhost.kombu_url)
    conn.connect()
    try:
        rmqd_vhost.delete()
        # Not OSError: a timeout (nothing arrived) is one, and must fail the test.
        with pytest.raises((amqp.exceptions.ConnectionForced, amqp.RecoverableConnectionError,
                            ConnectionResetError)):
            conn.drain_events(timeout=10)
    finally:
        try:
            conn.release()
        except Exception:
            pass


# Not a literal "%2F" in a name: aiormq turns it into "/" after decoding the URL.
@pytest.mark.parametrize('hint', ['team/a b', 'ünïcode &?#+'])
def test_vhost_names_are_percent_encoded_in_urls(rmqd, hint):
    """A vhost whose name needs encoding: pika, kombu and aio-pika all reach the same one."""
    vhost = rmqd.add_vhost(f'{hint}-{rmqd.unique_vhost_name()}')
    try:
        assert '/' not in vhost.url.split('/', 3)[3]
        with kombu.Connection(vhost.kombu_url) as conn:
            conn.connect()
            assert conn.connection.virtual_host == vhost.name
            conn.channel().queue_declare('from-kombu')

        async def aio():
            connection = await aio_pika.connect(vhost.url)
            async with connection:
                channel = await connection.channel()
                queue = await channel.declare_queue('from-kombu', passive=True)
                return queue.declaration_result.message_count

        assert asyncio.run(aio()) == 0
        assert passive_declare(vhost.url, 'from-kombu') == 0
        assert passive_declare(rmqd.url, 'from-kombu')[0] == 404
        assert vhost.name in rmqd_vhost_names(rmqd)
    finally:
        vhost.delete()
    assert vhost.name not in rmqd_vhost_names(rmqd)


def rmqd_vhost_names(rmqd):
    return [row[0] for row in rmqd.ctl_call('list_vhosts')['rows']]
