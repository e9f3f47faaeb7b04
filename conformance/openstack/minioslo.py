"""A small oslo.messaging: RPC and notifications over kombu, the way oslo's RabbitMQ driver does it.

Written for this suite (not oslo's code) after reading oslo.messaging 18.3.1's
`_drivers/impl_rabbit.py` and `_drivers/amqpdriver.py`. What reaches the broker is what oslo
sends with its default options:

- one topic exchange named after the control exchange (`control_exchange`, default
  `openstack`), non-durable, not auto-delete (`amqp_durable_queues = False`,
  `amqp_auto_delete = False`);
- an RPC server consumes three queues on one channel: `<topic>` (shared by every server of the
  topic) and `<topic>.<server>`, both bound to the control exchange with their own name as the
  key, and `<topic>_fanout_<uuid hex>`, bound to the fanout exchange `<topic>_fanout`
  (auto-delete). The fanout queue has `x-expires` (`rabbit_transient_queues_ttl` seconds,
  default 1800 -> 1800000 ms), is not auto-delete, and is deleted by the server when it stops;
- RPC requests are acked on receipt (before the method runs); notifications are acked after the
  endpoint returns;
- `call` creates one reply queue per client, `reply_<uuid hex>` with `x-expires`, and waits for
  the reply whose `_msg_id` matches. Replies go to the default exchange with the reply queue as
  the routing key, `mandatory` (oslo.messaging >= 9.8, `reply_exchange='default'`), or, as
  oslo.messaging < 9.8 did (`reply_exchange='msg_id'`), to a direct exchange named like the
  reply queue, auto-delete, declared by the client and published to passively;
- `call` publishes with `expiration` = its timeout; a missing reply raises MessagingTimeout;
- notifications go to the control exchange with routing key `<topic>.<priority>`
  (`notifications.info`); the notifier declares a queue of that name first, so that nothing is
  lost before a listener exists;
- messages are kombu JSON bodies in oslo's 2.0 envelope: `{"oslo.version": "2.0",
  "oslo.message": "<json>"}`, with `_unique_id` and the context as `_context_*` keys;
- connections log in with AMQPLAIN, negotiate a 60 s heartbeat, publish with confirms
  (`confirm_publish`), set `basic.qos` to `rabbit_qos_prefetch_count` on listening channels
  when it is > 0, and run every operation through kombu's `Connection.autoretry`/`ensure`
  (which re-raises transport errors as kombu's library errors): on a connection error kombu
  reconnects with back-off, and the revive callback re-declares every exchange, queue and
  binding of the connection and re-issues `basic.consume`.

Only the RabbitMQ driver's default paths are here: no quorum or stream queues, no HA policies,
no TLS, no connection pool (one sending connection per Transport).
"""

import collections
import itertools
import json
import logging
import os
import queue
import threading
import time
import traceback
import uuid

import amqp.exceptions
import kombu
import kombu.entity
import kombu.exceptions
import kombu.messaging

LOG = logging.getLogger('minioslo')

PURPOSE_SEND = 'send'
PURPOSE_LISTEN = 'listen'

# How long a listener's poll loop blocks at most before it looks at its stop flag again.
# oslo uses 5 s (ACK_REQUEUE_EVERY_SECONDS_MAX); shorter here so that tests stop quickly. It
# changes nothing on the wire.
POLL_MAX = 0.5

PRIORITIES = ('audit', 'debug', 'info', 'warn', 'error', 'critical', 'sample')


class Config:
    """The options of oslo's [DEFAULT] and [oslo_messaging_rabbit] this driver uses, with oslo's
    defaults. Config(rabbit_qos_prefetch_count=1, ...) overrides some."""

    control_exchange = 'openstack'
    rpc_response_timeout = 60
    amqp_durable_queues = False
    amqp_auto_delete = False
    rabbit_transient_queues_ttl = 1800
    rabbit_qos_prefetch_count = 0
    rabbit_retry_interval = 1
    rabbit_retry_backoff = 2
    rabbit_interval_max = 30
    rabbit_login_method = 'AMQPLAIN'
    kombu_reconnect_delay = 1.0
    kombu_missing_consumer_retry_timeout = 60
    heartbeat_timeout_threshold = 60
    heartbeat_rate = 3
    direct_mandatory_flag = True
    # 'default': replies to the default exchange, key reply_<uuid> (oslo.messaging >= 9.8);
    # 'msg_id': replies to a direct exchange named reply_<uuid> (oslo.messaging < 9.8).
    reply_exchange = 'default'

    def __init__(self, **overrides):
        for key, value in overrides.items():
            if not hasattr(type(self), key):
                raise TypeError(f'unknown option {key}')
            setattr(self, key, value)


# --- errors --------------------------------------------------------------------------------

class MessagingException(Exception):
    pass


class MessagingTimeout(MessagingException):
    pass


class MessageDeliveryFailure(MessagingException):
    pass


class MessageUndeliverable(MessagingException):
    """A mandatory publish came back (basic.return)."""

    def __init__(self, exception, exchange, routing_key, message):
        super().__init__(f'{exception} (exchange {exchange!r}, key {routing_key!r})')
        self.exception = exception
        self.exchange = exchange
        self.routing_key = routing_key
        self.message = message


class AMQPDestinationNotFound(MessagingException):
    pass


class RemoteError(MessagingException):
    """An exception raised by the server's endpoint, as the caller sees it."""

    def __init__(self, exc_type, value, traceback_text=''):
        super().__init__(f'Remote error: {exc_type} {value}')
        self.exc_type = exc_type
        self.value = value
        self.traceback = traceback_text


class _ConsumeTimeout(Exception):
    """Connection.consume() saw no message in time (oslo's rpc_common.Timeout)."""


# --- messages ------------------------------------------------------------------------------

ENVELOPE_VERSION = '2.0'
VERSION_KEY = 'oslo.version'
MESSAGE_KEY = 'oslo.message'
UNIQUE_ID = '_unique_id'


def serialize_msg(raw):
    return {VERSION_KEY: ENVELOPE_VERSION, MESSAGE_KEY: json.dumps(raw)}


def deserialize_msg(body):
    if isinstance(body, dict) and VERSION_KEY in body and MESSAGE_KEY in body:
        if body[VERSION_KEY].split('.')[0] != ENVELOPE_VERSION.split('.')[0]:
            raise MessagingException(f'unsupported envelope version {body[VERSION_KEY]}')
        return json.loads(body[MESSAGE_KEY])
    return body


def pack_context(msg, ctxt):
    msg.update((f'_context_{k}', v) for k, v in (ctxt or {}).items())


def unpack_context(msg):
    ctxt = {}
    for key in list(msg):
        if key.startswith('_context_'):
            ctxt[key[len('_context_'):]] = msg.pop(key)
    return ctxt, msg.pop('_msg_id', None), msg.pop('_reply_q', None), msg.pop('_timeout', None)


class _DuplicateFilter:
    """Drops a message whose _unique_id was among the last 16 seen (oslo's _MsgIdCache)."""

    def __init__(self):
        self._seen = collections.deque(maxlen=16)

    def check(self, msg):
        unique_id = msg.pop(UNIQUE_ID, None)
        if unique_id is not None and unique_id in self._seen:
            return None
        return unique_id or ''

    def add(self, unique_id):
        if unique_id and unique_id not in self._seen:
            self._seen.append(unique_id)


# RabbitMQ's 406 text when a declaration's durable flag differs from the existing entity's.
# oslo looks for it (a service with amqp_durable_queues = True joining a control exchange
# another service created non-durable) and declares non-durable instead.
DURABLE_MISMATCH = "PRECONDITION_FAILED - inequivalent arg 'durable'"


def queue_arguments(ttl_seconds):
    return {'x-expires': ttl_seconds * 1000} if ttl_seconds > 0 else {}


class RabbitMessage(dict):
    """A received message: the deserialized body, plus ack/requeue of the kombu message."""

    def __init__(self, raw):
        super().__init__(deserialize_msg(raw.payload))
        self.raw = raw

    @property
    def redelivered(self):
        return bool(self.raw.delivery_info.get('redelivered'))

    def acknowledge(self):
        self.raw.ack()

    def requeue(self):
        self.raw.requeue()


# --- consumers -----------------------------------------------------------------------------

class Consumer:
    """One queue (and its exchange and binding) a listening connection consumes."""

    def __init__(self, exchange_name, queue_name, routing_key, type, durable,
                 exchange_auto_delete, queue_auto_delete, callback, queue_ttl=0):
        self.exchange_name = exchange_name
        self.queue_name = queue_name
        self.routing_key = routing_key
        self.type = type
        self.durable = durable
        self.queue_auto_delete = queue_auto_delete
        self.callback = callback
        self.queue_arguments = queue_arguments(queue_ttl)
        self.exchange = kombu.entity.Exchange(name=exchange_name, type=type, durable=durable,
                                              auto_delete=exchange_auto_delete)
        self.queue = None
        self._declared_on = None

    def declare(self, conn):
        """(Re-)declares exchange, queue and binding on the connection's current channel."""
        self.queue = kombu.entity.Queue(
            name=self.queue_name, channel=conn.channel, exchange=self.exchange,
            durable=self.durable, auto_delete=self.queue_auto_delete,
            routing_key=self.routing_key, queue_arguments=self.queue_arguments)
        try:
            try:
                self.queue.declare()
            except amqp.exceptions.PreconditionFailed as err:
                if DURABLE_MISMATCH not in str(err):
                    raise
                LOG.warning('queue %s: %s; declaring it non-durable', self.queue_name, err)
                self._declare_non_durable(conn)
        except conn.connection.channel_errors as exc:
            # oslo retries once on 404 (a declare racing a deletion).
            if exc.code != 404:
                raise
            self.queue.declare()
        self._declared_on = conn.channel

    def _declare_non_durable(self, conn):
        # As oslo: the exchange's auto_delete is the queue's here.
        self.exchange = kombu.entity.Exchange(name=self.exchange_name, type=self.type,
                                              durable=False, auto_delete=self.queue_auto_delete)
        self.queue = kombu.entity.Queue(
            name=self.queue_name, channel=conn.channel, exchange=self.exchange, durable=False,
            auto_delete=self.queue_auto_delete, routing_key=self.routing_key,
            queue_arguments=self.queue_arguments)
        self.queue.declare()

    def consume(self, conn, tag):
        if conn.channel is not self._declared_on:
            self.declare(conn)
        self.queue.consume(callback=self._on_message, consumer_tag=str(tag), nowait=False)

    def cancel(self, tag):
        self.queue.cancel(str(tag))

    def _on_message(self, raw):
        to_python = getattr(self.queue.channel, 'message_to_python', None)
        if to_python:
            raw = to_python(raw)
        try:
            self.callback(RabbitMessage(raw))
        except Exception:
            LOG.exception('failed to process message, skipping it')


# --- connections ---------------------------------------------------------------------------

class Connection:
    """One kombu connection and its current channel, used either to send or to listen."""

    def __init__(self, conf, url, purpose, retry=None):
        self.conf = conf
        self.purpose = purpose
        self.max_retries = retry
        self.connection_id = uuid.uuid4().hex
        self._lock = threading.RLock()
        self._consumers = {}            # Consumer -> consumer tag
        self._active_tags = {}          # queue name -> consumer tag
        self._new_tags = set()          # tags to (re-)issue basic.consume for
        self._tags = itertools.count(1)
        self._declared_exchanges = set()
        self._declared_queues = set()
        self._consume_loop_stopped = False
        self.channel = None
        self._producer = None
        self.reconnections = 0          # times it had to connect again (for tests)
        self.connection = kombu.Connection(
            url,
            login_method=conf.rabbit_login_method,
            heartbeat=conf.heartbeat_timeout_threshold,
            transport_options={
                'confirm_publish': True,
                'client_properties': {
                    'capabilities': {
                        'authentication_failure_close': True,
                        'connection.blocked': True,
                        'consumer_cancel_notify': True,
                    },
                    'connection_name': f'minioslo:{os.getpid()}:{self.connection_id}',
                },
            })
        self._poll_timeout = conf.heartbeat_timeout_threshold / conf.heartbeat_rate / 2.0 \
            if conf.heartbeat_timeout_threshold > 0 else 1
        with self._lock:
            self.ensure_connection()
        self._heartbeat_stop = threading.Event()
        self._heartbeat_thread = None
        if purpose == PURPOSE_SEND and conf.heartbeat_timeout_threshold > 0:
            self._heartbeat_thread = threading.Thread(target=self._heartbeat_loop,
                                                      name='minioslo-heartbeat', daemon=True)
            self._heartbeat_thread.start()

    # -- connection and channel

    def _retry_policy(self):
        return dict(interval_start=self.conf.rabbit_retry_interval,
                    interval_step=self.conf.rabbit_retry_backoff,
                    interval_max=self.conf.rabbit_interval_max)

    def ensure_connection(self):
        def on_error(exc, interval):
            LOG.error('connection failed: %s (retrying in %s seconds)', exc, interval)

        first = self.channel is None and self._producer is None
        self._set_current_channel(None)
        self.connection.ensure_connection(errback=on_error, max_retries=self.max_retries,
                                          **self._retry_policy())
        self._set_current_channel(self.connection.channel())
        self._set_socket_timeout()
        if not first:
            self.reconnections += 1

    def _set_socket_timeout(self):
        # Like oslo: a blocked socket read or write gives up after the heartbeat timeout.
        try:
            sock = self.channel.connection.sock
        except AttributeError:
            return
        if self.conf.heartbeat_timeout_threshold > 0:
            sock.settimeout(self.conf.heartbeat_timeout_threshold)

    def _set_current_channel(self, channel):
        if channel is self.channel:
            return
        if self.channel is not None:
            self._declared_exchanges.clear()
            self._declared_queues.clear()
            self.connection.maybe_close_channel(self.channel)
        self.channel = channel
        if channel is not None:
            if self.purpose == PURPOSE_LISTEN and self.conf.rabbit_qos_prefetch_count > 0:
                channel.basic_qos(0, self.conf.rabbit_qos_prefetch_count, False)
            self._producer = kombu.messaging.Producer(channel, on_return=self._on_return)
            for consumer in self._consumers:
                consumer.declare(self)

    @staticmethod
    def _on_return(exception, exchange, routing_key, message):
        raise MessageUndeliverable(exception, exchange, routing_key, message)

    def ensure(self, method, retry=None, recoverable_error_callback=None,
               error_callback=None):
        """Runs method() through kombu's autoretry: on connection errors kombu reconnects
        (with back-off) and revives the channel, and we re-declare everything on it."""
        if retry is None or retry < 0:
            retry = None          # kombu: forever

        def on_error(exc, interval):
            LOG.info('[%s] recoverable error: %r', self.connection_id, exc)
            if recoverable_error_callback:
                recoverable_error_callback(exc)
            if self.conf.kombu_reconnect_delay > 0:
                time.sleep(self.conf.kombu_reconnect_delay)

        def on_revive(channel):
            self.reconnections += 1
            self._set_current_channel(channel)
            self._set_socket_timeout()
            LOG.info('[%s] reconnected', self.connection_id)

        def execute(channel):
            self._set_current_channel(channel)
            return method()

        try:
            ret, channel = self.connection.autoretry(
                execute, channel=self.channel, max_retries=retry, errback=on_error,
                on_revive=on_revive, **self._retry_policy())()
            self._set_current_channel(channel)
            return ret
        except (AMQPDestinationNotFound, MessageUndeliverable, _ConsumeTimeout):
            raise
        except Exception as exc:
            if error_callback:
                error_callback(exc)
            self._set_current_channel(None)
            raise MessageDeliveryFailure(f'unable to reach the AMQP server after {retry} '
                                         f'retries: {exc}') from exc

    def _heartbeat_loop(self):
        wait = self._poll_timeout
        while not self._heartbeat_stop.wait(wait):
            with self._lock:
                if self.connection is None:
                    return
                try:
                    try:
                        self.connection.heartbeat_check(rate=self.conf.heartbeat_rate)
                        try:
                            self.connection.drain_events(timeout=0.001)
                        except TimeoutError:
                            pass
                    except (OSError, kombu.exceptions.OperationalError) + tuple(
                            self.connection.recoverable_connection_errors) as exc:
                        LOG.info('heartbeat: %r, reconnecting', exc)
                        self.ensure_connection()
                except Exception:
                    LOG.warning('heartbeat thread error', exc_info=True)

    def close(self):
        """Stops consuming; deletes this connection's fanout queues (as oslo does); closes."""
        if self._heartbeat_thread is not None:
            self._heartbeat_stop.set()
            self._heartbeat_thread.join()
            self._heartbeat_thread = None
        with self._lock:
            if self.connection is None:
                return
            try:
                for consumer in self._consumers:
                    if consumer.type == 'fanout' and consumer.queue is not None:
                        consumer.queue.delete()
            except Exception:
                LOG.warning('could not delete fanout queues', exc_info=True)
            try:
                self._set_current_channel(None)
            except Exception:
                pass
            self.connection.release()
            self.connection = None

    # -- consuming

    def declare_consumer(self, consumer):
        def declare():
            consumer.declare(self)
            tag = self._active_tags.get(consumer.queue_name)
            if tag is None:
                tag = next(self._tags)
                self._active_tags[consumer.queue_name] = tag
                self._new_tags.add(tag)
            self._consumers[consumer] = tag
            return consumer

        with self._lock:
            return self.ensure(declare)

    def declare_direct_consumer(self, reply_q, callback):
        """The reply queue of an RPC client."""
        ttl = self.conf.rabbit_transient_queues_ttl
        if self.conf.reply_exchange == 'msg_id':
            consumer = Consumer(exchange_name=reply_q, queue_name=reply_q, routing_key=reply_q,
                                type='direct', durable=False, exchange_auto_delete=True,
                                queue_auto_delete=False, callback=callback, queue_ttl=ttl)
        else:
            consumer = Consumer(exchange_name='', queue_name=reply_q, routing_key='',
                                type='direct', durable=False, exchange_auto_delete=False,
                                queue_auto_delete=False, callback=callback, queue_ttl=ttl)
        return self.declare_consumer(consumer)

    def declare_topic_consumer(self, exchange_name, topic, callback, queue_name=None):
        consumer = Consumer(exchange_name=exchange_name, queue_name=queue_name or topic,
                            routing_key=topic, type='topic',
                            durable=self.conf.amqp_durable_queues,
                            exchange_auto_delete=self.conf.amqp_auto_delete,
                            queue_auto_delete=self.conf.amqp_auto_delete, callback=callback)
        return self.declare_consumer(consumer)

    def declare_fanout_consumer(self, topic, callback):
        consumer = Consumer(exchange_name=f'{topic}_fanout',
                            queue_name=f'{topic}_fanout_{uuid.uuid4().hex}',
                            routing_key=topic, type='fanout', durable=False,
                            exchange_auto_delete=True, queue_auto_delete=False,
                            callback=callback, queue_ttl=self.conf.rabbit_transient_queues_ttl)
        return self.declare_consumer(consumer)

    def consume(self, timeout=None):
        """Waits for deliveries (running the consumers' callbacks) for at most `timeout`
        seconds; raises _ConsumeTimeout when none came."""
        deadline = None if timeout is None else time.monotonic() + timeout

        def left():
            return None if deadline is None else deadline - time.monotonic()

        def check_timeout():
            remaining = left()
            if remaining is not None and remaining <= 0:
                raise _ConsumeTimeout()
            return remaining

        def on_recoverable_error(exc):
            # After a reconnection every consumer must be issued again.
            self._new_tags = set(self._consumers.values())
            check_timeout()

        def consume_once():
            if not self.connection.connected:
                self.connection.maybe_switch_next()
                raise self.connection.recoverable_connection_errors[0]
            while self._new_tags:
                for consumer, tag in self._consumers.items():
                    if tag in self._new_tags:
                        consumer.consume(self, tag)
                        self._new_tags.discard(tag)
            remaining = left()
            poll = self._poll_timeout if remaining is None else min(remaining,
                                                                    self._poll_timeout)
            while True:
                if self._consume_loop_stopped:
                    return
                try:
                    self.connection.drain_events(timeout=max(poll, 0.001))
                    return
                except TimeoutError:
                    if self.conf.heartbeat_timeout_threshold > 0:
                        self.connection.heartbeat_check(rate=self.conf.heartbeat_rate)
                    remaining = check_timeout()
                    poll = self._poll_timeout if remaining is None else min(
                        remaining, self._poll_timeout)

        with self._lock:
            self.ensure(consume_once, recoverable_error_callback=on_recoverable_error)

    def stop_consuming(self):
        self._consume_loop_stopped = True

    # -- publishing

    def _publish(self, exchange, msg, routing_key=None, timeout=None, mandatory=False):
        if not (exchange.passive or exchange.name in self._declared_exchanges):
            try:
                exchange(self.channel).declare()
            except amqp.exceptions.PreconditionFailed as err:
                if DURABLE_MISMATCH not in str(err):
                    raise
                LOG.warning('exchange %s: %s; declaring it non-durable', exchange.name, err)
                exchange.durable = False
                exchange(self.channel).declare()
            self._declared_exchanges.add(exchange.name)
        self._producer.publish(msg, exchange=exchange, routing_key=routing_key,
                               mandatory=mandatory, expiration=timeout)

    def _publish_and_creates_default_queue(self, exchange, msg, routing_key=None,
                                           timeout=None, mandatory=False):
        """For notifications: first a queue named like the routing key, bound to it."""
        if (exchange.name, routing_key) not in self._declared_queues:
            kombu.entity.Queue(channel=self.channel, exchange=exchange,
                               durable=exchange.durable, auto_delete=exchange.auto_delete,
                               name=routing_key, routing_key=routing_key,
                               queue_arguments={}).declare()
            self._declared_queues.add((exchange.name, routing_key))
        self._publish(exchange, msg, routing_key=routing_key, timeout=timeout)

    def _publish_and_raises_on_missing_exchange(self, exchange, msg, routing_key=None,
                                                timeout=None, mandatory=False):
        assert exchange.passive
        try:
            self._publish(exchange, msg, routing_key=routing_key, timeout=timeout,
                          mandatory=mandatory)
        except self.connection.channel_errors as exc:
            if exc.code == 404:
                raise AMQPDestinationNotFound(f'exchange {exchange.name} does not exist')
            raise

    def _ensure_publishing(self, method, exchange, msg, routing_key=None, timeout=None,
                           retry=None, mandatory=False):
        def publish():
            return method(exchange, msg, routing_key=routing_key, timeout=timeout,
                          mandatory=mandatory)

        with self._lock:
            self.ensure(publish, retry=retry)

    def direct_send(self, reply_q, msg):
        if self.conf.reply_exchange == 'msg_id':
            exchange = kombu.entity.Exchange(name=reply_q, type='direct', durable=False,
                                             auto_delete=True, passive=True)
            mandatory = False
        else:
            exchange = kombu.entity.Exchange(name='', type='direct', durable=False,
                                             auto_delete=True, passive=True)
            mandatory = self.conf.direct_mandatory_flag
        self._ensure_publishing(self._publish_and_raises_on_missing_exchange, exchange, msg,
                                routing_key=reply_q, mandatory=mandatory)

    def topic_send(self, exchange_name, topic, msg, timeout=None, retry=None):
        exchange = kombu.entity.Exchange(name=exchange_name, type='topic',
                                         durable=self.conf.amqp_durable_queues,
                                         auto_delete=self.conf.amqp_auto_delete)
        self._ensure_publishing(self._publish, exchange, msg, routing_key=topic,
                                timeout=timeout, retry=retry)

    def fanout_send(self, topic, msg, retry=None):
        exchange = kombu.entity.Exchange(name=f'{topic}_fanout', type='fanout', durable=False,
                                         auto_delete=True)
        self._ensure_publishing(self._publish, exchange, msg, retry=retry)

    def notify_send(self, exchange_name, topic, msg, retry=None):
        exchange = kombu.entity.Exchange(name=exchange_name, type='topic',
                                         durable=self.conf.amqp_durable_queues,
                                         auto_delete=self.conf.amqp_auto_delete)
        self._ensure_publishing(self._publish_and_creates_default_queue, exchange, msg,
                                routing_key=topic, retry=retry)


# --- the driver ----------------------------------------------------------------------------

class Target:
    def __init__(self, topic=None, server=None, exchange=None, fanout=False):
        self.topic, self.server, self.exchange, self.fanout = topic, server, exchange, fanout

    def __call__(self, **changes):
        values = dict(topic=self.topic, server=self.server, exchange=self.exchange,
                      fanout=self.fanout)
        values.update(changes)
        return Target(**values)


class _ReplyWaiter:
    """The client's reply queue and the thread that consumes it."""

    def __init__(self, reply_q, conn):
        self.reply_q = reply_q
        self.conn = conn
        self._waiters = {}
        self._dups = _DuplicateFilter()
        conn.declare_direct_consumer(reply_q, self._on_reply)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name='minioslo-replies', daemon=True)
        self._thread.start()

    def _poll(self):
        timeout = 0.001
        while not self._stop.is_set():
            try:
                self.conn.consume(timeout=timeout)
            except _ConsumeTimeout:
                timeout = min(timeout * 2, POLL_MAX)
            except Exception:
                LOG.exception('reply waiter: failed to consume, retrying')
            else:
                timeout = 0.001

    def _on_reply(self, message):
        message.acknowledge()
        msg_id = message.pop('_msg_id', None)
        waiter = self._waiters.get(msg_id)
        if waiter is None:
            LOG.info('no caller waits for msg_id %s', msg_id)
        else:
            waiter.put(dict(message))

    def listen(self, msg_id):
        self._waiters[msg_id] = queue.Queue()

    def unlisten(self, msg_id):
        self._waiters.pop(msg_id, None)

    def wait(self, msg_id, timeout):
        deadline = time.monotonic() + timeout
        result, ending = None, False
        while not ending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                data = self._waiters[msg_id].get(timeout=remaining)
            except queue.Empty:
                break
            if self._dups.check(data) is None:
                continue
            if data.get('failure'):
                failure = json.loads(data['failure'])
                return RemoteError(failure['class'], failure['message'],
                                   '\n'.join(failure.get('tb', [])))
            if data.get('result') is not None:
                result = data['result']
            ending = data.get('ending', False)
        if not ending:
            raise MessagingTimeout(f'Timed out waiting for a reply {self.reply_q} to message '
                                   f'ID {msg_id}.')
        return result

    def stop(self):
        self._stop.set()
        self.conn.stop_consuming()
        self._thread.join()


class Transport:
    """oslo's Transport + AMQPDriverBase: sends RPC and notifications, owns the reply queue."""

    def __init__(self, url, conf=None):
        self.url = url
        self.conf = conf or Config()
        self._send_conn = None
        self._send_conn_lock = threading.Lock()
        self._reply_lock = threading.Lock()
        self._reply_q = None
        self._waiter = None
        self._reply_conn = None

    def send_connection(self):
        with self._send_conn_lock:
            if self._send_conn is None:
                self._send_conn = Connection(self.conf, self.url, PURPOSE_SEND)
            return self._send_conn

    def listen_connection(self):
        return Connection(self.conf, self.url, PURPOSE_LISTEN)

    @property
    def reply_q(self):
        return self._reply_q

    @property
    def reply_connection(self):
        return self._reply_conn

    def _get_reply_q(self):
        with self._reply_lock:
            if self._reply_q is None:
                reply_q = 'reply_' + uuid.uuid4().hex
                conn = self.listen_connection()
                self._waiter = _ReplyWaiter(reply_q, conn)
                self._reply_q, self._reply_conn = reply_q, conn
            return self._reply_q

    def _send(self, target, ctxt, msg, wait_for_reply=False, timeout=None, notify=False,
              envelope=True, retry=None):
        msg = dict(msg)
        msg_id = None
        if wait_for_reply:
            reply_q = self._get_reply_q()
            msg_id = uuid.uuid4().hex
            msg.update({'_msg_id': msg_id, '_reply_q': reply_q, '_timeout': None})
        msg[UNIQUE_ID] = uuid.uuid4().hex
        pack_context(msg, ctxt)
        if envelope:
            msg = serialize_msg(msg)
        if wait_for_reply:
            self._waiter.listen(msg_id)
        try:
            conn = self.send_connection()
            exchange = target.exchange or self.conf.control_exchange
            if notify:
                conn.notify_send(exchange, target.topic, msg, retry=retry)
            elif target.fanout:
                conn.fanout_send(target.topic, msg, retry=retry)
            else:
                topic = target.topic
                if target.server:
                    topic = f'{target.topic}.{target.server}'
                conn.topic_send(exchange, topic, msg, timeout=timeout, retry=retry)
            if wait_for_reply:
                result = self._waiter.wait(msg_id, timeout)
                if isinstance(result, Exception):
                    raise result
                return result
        finally:
            if wait_for_reply:
                self._waiter.unlisten(msg_id)

    def cleanup(self):
        with self._reply_lock:
            if self._waiter is not None:
                self._waiter.stop()
                self._reply_conn.close()
                self._waiter = self._reply_conn = self._reply_q = None
        with self._send_conn_lock:
            if self._send_conn is not None:
                self._send_conn.close()
                self._send_conn = None


class RPCClient:
    def __init__(self, transport, target, timeout=None, retry=None):
        self.transport, self.target, self.timeout, self.retry = transport, target, timeout, retry

    def prepare(self, server=None, fanout=None, timeout=None, topic=None):
        target = self.target(**{k: v for k, v in dict(server=server, fanout=fanout,
                                                      topic=topic).items() if v is not None})
        return RPCClient(self.transport, target, timeout if timeout is not None else self.timeout,
                         self.retry)

    def cast(self, ctxt, method, **kwargs):
        self.transport._send(self.target, ctxt, {'method': method, 'args': kwargs},
                             retry=self.retry)

    def call(self, ctxt, method, **kwargs):
        if self.target.fanout:
            raise MessagingException('a call cannot be fanout')
        timeout = self.timeout if self.timeout is not None else \
            self.transport.conf.rpc_response_timeout
        return self.transport._send(self.target, ctxt, {'method': method, 'args': kwargs},
                                    wait_for_reply=True, timeout=timeout, retry=self.retry)


class _Listener:
    """Collects deliveries of a listening connection; poll() hands them out one by one."""

    ack_on_receipt = False

    def __init__(self, conn):
        self.conn = conn
        self.incoming = []
        self._dups = _DuplicateFilter()
        self._stop = threading.Event()

    def __call__(self, message):
        if self.ack_on_receipt:
            try:
                message.acknowledge()
            except Exception as exc:
                LOG.warning('discarding RPC request: ack failed: %s', exc)
                return
        unique_id = self._dups.check(message)
        if unique_id is None:
            return
        if self.ack_on_receipt:
            self._dups.add(unique_id)
        message.unique_id = unique_id
        self.incoming.append(message)

    def poll(self):
        timeout = 0.001
        while not self._stop.is_set():
            if self.incoming:
                return self.incoming.pop(0)
            try:
                self.conn.consume(timeout=timeout)
            except _ConsumeTimeout:
                timeout = min(timeout * 2, POLL_MAX)
            else:
                timeout = 0.001
        return self.incoming.pop(0) if self.incoming else None

    def stop(self):
        self._stop.set()
        self.conn.stop_consuming()


class _RpcListener(_Listener):
    # oslo acks an RPC request as soon as it arrives, before running the method.
    ack_on_receipt = True


class _Server:
    listener_cls = _Listener

    def __init__(self, transport):
        self.transport = transport
        self.conn = None
        self.listener = None
        self._thread = None

    def start(self):
        self.conn = self.transport.listen_connection()
        self.listener = self.listener_cls(self.conn)
        self._declare()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while True:
            try:
                message = self.listener.poll()
            except Exception:
                LOG.exception('%s: poll failed', type(self).__name__)
                time.sleep(0.1)
                continue
            if message is None:
                return
            try:
                self._dispatch(message)
            except Exception:
                LOG.exception('%s: dispatch failed', type(self).__name__)

    def stop(self):
        if self._thread is None:
            return
        self.listener.stop()
        self._thread.join()
        self._thread = None
        self.conn.close()


class RPCServer(_Server):
    """Consumes <topic>, <topic>.<server> and a <topic>_fanout_<uuid> queue; runs the
    endpoint's method and replies to calls."""

    listener_cls = _RpcListener

    def __init__(self, transport, target, endpoints):
        super().__init__(transport)
        self.target = target
        self.endpoints = endpoints
        self.undeliverable_replies = 0     # replies that came back or found no exchange
        self.abandoned_replies = []        # reply queues given up on

    @property
    def fanout_queue(self):
        for consumer in self.conn._consumers:
            if consumer.type == 'fanout':
                return consumer.queue_name
        return None

    def _declare(self):
        exchange = self.target.exchange or self.transport.conf.control_exchange
        topic, server = self.target.topic, self.target.server
        self.conn.declare_topic_consumer(exchange, topic, self.listener)
        self.conn.declare_topic_consumer(exchange, f'{topic}.{server}', self.listener)
        self.conn.declare_fanout_consumer(topic, self.listener)

    def _dispatch(self, message):
        ctxt, msg_id, reply_q, _ = unpack_context(message)
        method = message.get('method')
        args = message.get('args') or {}
        reply, failure = None, None
        try:
            for endpoint in self.endpoints:
                fn = getattr(endpoint, method, None)
                if callable(fn) and not method.startswith('_'):
                    reply = fn(ctxt, **args)
                    break
            else:
                raise MessagingException(f'endpoint does not support RPC method {method}')
        except Exception as exc:
            failure = exc
        if msg_id:
            self._reply(msg_id, reply_q, reply, failure)

    def _reply(self, msg_id, reply_q, reply, failure):
        if reply_q in self.abandoned_replies:
            return
        msg = {'result': reply, 'failure': None, 'ending': True, '_msg_id': msg_id,
               UNIQUE_ID: uuid.uuid4().hex}
        if failure is not None:
            msg['failure'] = json.dumps({
                'class': type(failure).__name__, 'module': type(failure).__module__,
                'message': str(failure), 'args': [str(a) for a in failure.args],
                'kwargs': {}, 'tb': traceback.format_exception(failure)})
        deadline = time.monotonic() + self.transport.conf.kombu_missing_consumer_retry_timeout
        while True:
            try:
                self.transport.send_connection().direct_send(reply_q, serialize_msg(msg))
                return
            except (MessageUndeliverable, AMQPDestinationNotFound) as exc:
                self.undeliverable_replies += 1
                if time.monotonic() >= deadline:
                    LOG.error('reply %s to %s abandoned: %s', msg_id, reply_q, exc)
                    self.abandoned_replies.append(reply_q)
                    return
                time.sleep(0.25)


class NotificationListener(_Server):
    """Consumes <topic>.<priority> (or the pool's queue) for every priority an endpoint
    handles; acks after the endpoint returns (requeues when it returns REQUEUE)."""

    HANDLED = 'handled'
    REQUEUE = 'requeue'

    def __init__(self, transport, targets, endpoints, pool=None):
        super().__init__(transport)
        self.targets = targets
        self.endpoints = endpoints
        self.pool = pool

    def _declare(self):
        priorities = [p for p in PRIORITIES if any(hasattr(e, p) for e in self.endpoints)]
        for target in self.targets:
            for priority in priorities:
                self.conn.declare_topic_consumer(
                    target.exchange or self.transport.conf.control_exchange,
                    f'{target.topic}.{priority}', self.listener, queue_name=self.pool)

    def _dispatch(self, message):
        ctxt, _, _, _ = unpack_context(message)
        priority = message.get('priority', '').lower()
        result = None
        for endpoint in self.endpoints:
            fn = getattr(endpoint, priority, None)
            if fn is not None:
                metadata = {'message_id': message.get('message_id'),
                            'timestamp': message.get('timestamp'),
                            'redelivered': message.redelivered}
                result = fn(ctxt, message.get('publisher_id'), message.get('event_type'),
                            message.get('payload'), metadata)
                break
        with self.conn._lock:
            if result == self.REQUEUE:
                message.requeue()
            else:
                message.acknowledge()
                self.listener._dups.add(message.unique_id)


class Notifier:
    def __init__(self, transport, publisher_id, topics=('notifications',), retry=None):
        self.transport, self.publisher_id = transport, publisher_id
        self.topics, self.retry = tuple(topics), retry

    def _notify(self, ctxt, event_type, payload, priority):
        msg = dict(message_id=str(uuid.uuid4()), publisher_id=self.publisher_id,
                   event_type=event_type, priority=priority.upper(), payload=payload,
                   timestamp=time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime()))
        for topic in self.topics:
            self.transport._send(Target(topic=f'{topic}.{priority}'), ctxt, msg, notify=True,
                                 retry=self.retry)
        return msg['message_id']

    def audit(self, ctxt, event_type, payload):
        return self._notify(ctxt, event_type, payload, 'audit')

    def debug(self, ctxt, event_type, payload):
        return self._notify(ctxt, event_type, payload, 'debug')

    def info(self, ctxt, event_type, payload):
        return self._notify(ctxt, event_type, payload, 'info')

    def warn(self, ctxt, event_type, payload):
        return self._notify(ctxt, event_type, payload, 'warn')

    def error(self, ctxt, event_type, payload):
        return self._notify(ctxt, event_type, payload, 'error')

    def critical(self, ctxt, event_type, payload):
        return self._notify(ctxt, event_type, payload, 'critical')
