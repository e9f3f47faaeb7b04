"""Fixtures: the broker (started here, through the pytest-rmqd plugin, when given rmqd), names,
transports, workers.

Environment:
  RMQD_BIN   path to an rmqd binary (or pytest-rmqd's --rmqd-bin=PATH): each test module starts
             its own rmqd, with the plugin's rmqd_factory, on 127.0.0.1:AMQP_PORT (a free port
             when AMQP_PORT is unset) and stops it (SIGTERM) afterwards. The reconnection test
             restarts it. Needs the plugin: pip install ./python/pytest-rmqd.
  AMQP_PORT  the broker's port. Without RMQD_BIN the tests use the broker already listening
             there (default 5672), e.g. RabbitMQ, and skip the test that restarts the broker.
  RMQD_LOG   where rmqd's output goes (appended); default: a temporary file, deleted with the
             broker.
"""

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import amqp
import kombu
import pytest

import minioslo

HERE = Path(__file__).resolve().parent
HOST = '127.0.0.1'
START_TIMEOUT = 15
STOP_TIMEOUT = 10


def wait_for(predicate, timeout=10.0, interval=0.05, what='condition'):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout}s waiting for {what}')
        time.sleep(interval)


def _port_open(port):
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wants_rmqd(config):
    return bool(os.environ.get('RMQD_BIN') or (
        config.pluginmanager.has_plugin('rmqd') and config.getoption('rmqd_bin')))


class Broker:
    """The broker under test. owned: started (and restartable) by this suite, as an rmqd of
    pytest-rmqd's rmqd_factory (a pytest_rmqd.Rmqd: it keeps its port across restarts)."""

    def __init__(self, factory=None):
        self.owned = factory is not None
        port = os.environ.get('AMQP_PORT')
        self.server = None
        if self.owned:
            self.server = factory(port=int(port) if port else 0,
                                  log_file=os.environ.get('RMQD_LOG') or None,
                                  startup_timeout=START_TIMEOUT, start=False)
            self.port = None
        else:
            self.port = int(port) if port else 5672
        self.url = None

    def start(self):
        if not self.owned:
            if not _port_open(self.port):
                pytest.exit(f'no broker listens on {HOST}:{self.port}', returncode=3)
        else:
            self.server.start()
            self.port = self.server.port
        self.url = f'amqp://guest:guest@{HOST}:{self.port}//'

    def stop(self):
        """SIGTERM, as a service manager stops it; returns how long it took to exit (raises
        when rmqd had to be killed after STOP_TIMEOUT)."""
        if self.server is None:
            return 0.0
        return self.server.stop(STOP_TIMEOUT)

    def close(self):
        if self.server is not None:
            self.server.close()


@pytest.fixture(scope='module')
def broker(request):
    factory = None
    if _wants_rmqd(request.config):
        if not request.config.pluginmanager.has_plugin('rmqd'):
            pytest.exit('RMQD_BIN is set but the pytest-rmqd plugin, which starts rmqd, is not '
                        'installed: pip install ./python/pytest-rmqd', returncode=4)
        factory = request.getfixturevalue('rmqd_factory')
    b = Broker(factory)
    b.start()
    yield b
    b.close()


class Admin:
    """Looks at the broker with plain AMQP, a fresh channel per question (a failed passive
    declare or an inequivalent redeclare closes the channel)."""

    def __init__(self, url):
        self.conn = kombu.Connection(url)
        self.conn.ensure_connection(max_retries=3)

    def _channel_call(self, fn):
        ch = self.conn.channel()
        try:
            return fn(ch)
        finally:
            try:
                ch.close()
            except Exception:
                pass

    def queue(self, name):
        """(message_count, consumer_count), or None when the queue does not exist."""
        try:
            ok = self._channel_call(lambda ch: ch.queue_declare(name, passive=True))
        except amqp.exceptions.NotFound:
            return None
        return ok.message_count, ok.consumer_count

    def exchange_exists(self, name):
        try:
            self._channel_call(lambda ch: ch.exchange_declare(name, 'topic', passive=True))
            return True
        except amqp.exceptions.NotFound:
            return False

    def redeclare_queue(self, name, durable=False, auto_delete=False, arguments=None):
        """None when the broker accepts the declaration as equivalent, else (code, text)."""
        try:
            self._channel_call(lambda ch: ch.queue_declare(
                name, durable=durable, auto_delete=auto_delete, arguments=arguments))
            return None
        except amqp.exceptions.AMQPError as e:
            return e.code, e.reply_text

    def redeclare_exchange(self, name, type, durable=False, auto_delete=False):
        try:
            self._channel_call(lambda ch: ch.exchange_declare(
                name, type, durable=durable, auto_delete=auto_delete))
            return None
        except amqp.exceptions.AMQPError as e:
            return e.code, e.reply_text

    def get(self, queue_name):
        """basic.get (no_ack): the raw py-amqp message, or None when the queue is empty."""
        return self._channel_call(lambda ch: ch.basic_get(queue_name, no_ack=True))

    def delete_queue(self, name):
        try:
            self._channel_call(lambda ch: ch.queue_delete(name))
        except Exception:
            pass

    def delete_exchange(self, name):
        try:
            self._channel_call(lambda ch: ch.exchange_delete(name))
        except Exception:
            pass

    def close(self):
        self.conn.release()


@pytest.fixture
def admin(broker):
    a = Admin(broker.url)
    yield a
    a.close()


class Names:
    """A control exchange and a topic of the test's own (runs against a shared broker do not
    meet); what to delete afterwards."""

    def __init__(self, test_name):
        short = uuid.uuid4().hex[:8]
        self.exchange = f'openstack_{short}'
        self.topic = f'{test_name[:24]}_{short}'.replace('[', '_').replace(']', '')
        self.queues = set()
        self.exchanges = {self.exchange, f'{self.topic}_fanout'}

    def config(self, **overrides):
        return minioslo.Config(control_exchange=self.exchange, **overrides)

    def server_queues(self, *servers):
        self.queues.add(self.topic)
        self.queues.update(f'{self.topic}.{s}' for s in servers)


@pytest.fixture
def names(request, broker):
    n = Names(request.node.name)
    yield n
    a = Admin(broker.url)
    try:
        for q in n.queues:
            a.delete_queue(q)
        for e in n.exchanges:
            a.delete_exchange(e)
    finally:
        a.close()


@pytest.fixture
def make_transport(broker, names):
    """make_transport(**options) -> a minioslo.Transport on the test's control exchange;
    every transport and server made through it is stopped at teardown."""
    made = []

    def make(**overrides):
        t = minioslo.Transport(broker.url, names.config(**overrides))
        made.append(t)
        return t

    make.servers = []
    yield make
    for s in make.servers:
        try:
            s.stop()
        except Exception:
            pass
    for t in made:
        try:
            t.cleanup()
        except Exception:
            pass


def start_rpc_server(make_transport, names, server, endpoint, **options):
    transport = make_transport(**options)
    srv = minioslo.RPCServer(transport, minioslo.Target(topic=names.topic, server=server),
                             [endpoint]).start()
    make_transport.servers.append(srv)
    names.server_queues(server)
    return srv


class Worker:
    """worker.py in a subprocess; its JSON lines are collected by a thread."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, str(HERE / 'worker.py'), *args],
                                     cwd=HERE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.events = queue.Queue()
        self.seen = []
        self.stderr = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({'event': 'noise', 'line': line})

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def expect(self, event, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f'worker: no {event!r} within {timeout}s; saw {self.seen}; '
                                     f'stderr: {"".join(self.stderr)[-2000:]}')
            try:
                e = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(e)
            if e['event'] == event:
                return e

    def drain(self, wait=0.0):
        """Every event so far (waiting `wait` seconds for late ones)."""
        time.sleep(wait)
        out = []
        while True:
            try:
                e = self.events.get_nowait()
            except queue.Empty:
                return out
            self.seen.append(e)
            out.append(e)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def workers():
    started = []

    def start(*args):
        w = Worker(*args)
        started.append(w)
        return w

    yield start
    for w in started:
        w.kill()
