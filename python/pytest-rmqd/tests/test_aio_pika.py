"""aio-pika (asyncio, through pytest-asyncio) against the test's own vhost."""

import asyncio

import aio_pika
import aiormq
import pytest


@pytest.mark.asyncio
async def test_publish_and_consume(rmqd_vhost):
    connection = await aio_pika.connect_robust(rmqd_vhost.url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        exchange = await channel.declare_exchange('events', aio_pika.ExchangeType.TOPIC)
        queue = await channel.declare_queue('audit', durable=True)
        await queue.bind(exchange, 'user.*')
        for key in ('user.created', 'order.created', 'user.deleted'):
            await exchange.publish(aio_pika.Message(key.encode(), correlation_id=key),
                                   routing_key=key)

        got = []

        async def consume():
            async with queue.iterator() as messages:
                async for message in messages:
                    async with message.process():
                        got.append((message.routing_key, message.body, message.correlation_id))
                    if len(got) == 2:
                        return

        await asyncio.wait_for(consume(), timeout=10)
        assert got == [('user.created', b'user.created', 'user.created'),
                       ('user.deleted', b'user.deleted', 'user.deleted')]
        declared = await channel.declare_queue('audit', durable=True, passive=True)
        assert declared.declaration_result.message_count == 0


@pytest.mark.asyncio
async def test_default_vhost_through_the_printed_url(rmqd):
    # rmqd.url spells the default vhost "/" as %2F, which aio-pika must decode.
    connection = await aio_pika.connect(rmqd.url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await channel.default_exchange.publish(aio_pika.Message(b'ping'),
                                               routing_key=queue.name)
        message = await queue.get(timeout=5)
        await message.ack()
        assert message.body == b'ping'


@pytest.mark.asyncio
async def test_a_queue_of_another_vhost_is_not_found(rmqd, rmqd_vhost):
    other = rmqd.add_vhost()
    try:
        first = await aio_pika.connect(rmqd_vhost.url)
        second = await aio_pika.connect(other.url)
        async with first, second:
            ch = await first.channel()
            await ch.declare_queue('only-here')
            ch2 = await second.channel()
            with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity) as err:
                await ch2.declare_queue('only-here', passive=True)
            assert 'NOT_FOUND' in str(err.value)
    finally:
        other.delete()
