"""Start and stop an rmqd broker; talk to its control socket. Standard library only.

This module does not import pytest: scripts (e.g. the conformance runner) can use it too.

    from pytest_rmqd.launcher import Rmqd, find_binary

    with Rmqd(find_binary()) as broker:
        vhost = broker.add_vhost('orders')
        print(vhost.url)            # amqp://guest:guest@127.0.0.1:40123/orders
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    'BinaryNotFound', 'CtlClient', 'CtlError', 'HOW_TO_GET', 'Rmqd', 'RmqdError',
    'StartupError', 'Vhost', 'amqp_url', 'find_binary',
]

HOW_TO_GET = (
    'Build it in a checkout of the rmqd repository with `cargo build --release -p rmqd` '
    '(the binary is then target/release/rmqd), or install it with `cargo install --path cli` '
    'from that checkout; then pass --rmqd-bin PATH, set RMQD_BIN=PATH, or put rmqd on PATH.'
)

DEFAULT_STARTUP_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 10.0
CTL_TIMEOUT = 30.0


class RmqdError(RuntimeError):
    """Anything that went wrong starting, stopping or administering rmqd."""


class BinaryNotFound(RmqdError):
    pass


class StartupError(RmqdError):
    pass


class CtlError(RmqdError):
    """The control socket answered {"ok": false, "error": ...}."""

    def __init__(self, command, error):
        super().__init__(f'rmqd ctl {command}: {error}')
        self.command = command
        self.error = error


def find_binary(path=None, env=None):
    """The rmqd executable: `path` if given, else $RMQD_BIN, else `rmqd` on PATH.

    Raises BinaryNotFound with a message saying where it looked and how to get rmqd."""
    env = os.environ if env is None else env
    if path:
        where = f'--rmqd-bin {path}'
    elif env.get('RMQD_BIN'):
        path = env['RMQD_BIN']
        where = f'RMQD_BIN={path}'
    else:
        found = shutil.which('rmqd', path=env.get('PATH'))
        if found:
            return os.path.abspath(found)
        raise BinaryNotFound(
            'rmqd was not found: no --rmqd-bin option, no RMQD_BIN environment variable and no '
            '`rmqd` on PATH. ' + HOW_TO_GET)
    path = os.path.expanduser(str(path))
    if os.sep not in path and not os.path.exists(path):
        found = shutil.which(path, path=env.get('PATH'))
        if found:
            return os.path.abspath(found)
    if not os.path.isfile(path):
        raise BinaryNotFound(f'rmqd was not found: {where}: no such file. ' + HOW_TO_GET)
    if not os.access(path, os.X_OK):
        raise BinaryNotFound(f'rmqd is not executable: {where}. ' + HOW_TO_GET)
    return os.path.abspath(path)


def amqp_url(host, port, username, password, vhost):
    """amqp://user:pass@host:port/vhost, every part percent-encoded ("/" is %2F)."""
    netloc_host = f'[{host}]' if ':' in host else host
    return (f'amqp://{quote(username, safe="")}:{quote(password, safe="")}@{netloc_host}:{port}/'
            f'{quote(vhost, safe="")}')


class CtlClient:
    """Newline-delimited JSON over rmqd's --ctl-socket; one connection, reopened if it breaks.

    call('add_vhost', 'orders') sends {"command": "add_vhost", "args": ["orders"]}."""

    def __init__(self, path, timeout=CTL_TIMEOUT):
        self.path = str(path)
        self.timeout = timeout
        self._sock = None
        self._file = None
        self._lock = threading.Lock()

    def _connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._file = sock.makefile('rb')

    def _drop(self):
        for thing in (self._file, self._sock):
            try:
                if thing is not None:
                    thing.close()
            except OSError:
                pass
        self._sock = self._file = None

    def _exchange(self, line):
        if self._sock is None:
            self._connect()
        self._sock.sendall(line)
        reply = self._file.readline()
        if not reply.endswith(b'\n'):
            raise ConnectionError('the control socket closed the connection')
        return reply

    def call(self, command, *args, vhost=None):
        """Runs one command; returns the reply object; raises CtlError when it says not ok."""
        request = {'command': command, 'args': [str(a) for a in args]}
        if vhost is not None:
            request['vhost'] = vhost
        line = json.dumps(request).encode() + b'\n'
        with self._lock:
            try:
                reply = self._exchange(line)
            except (ConnectionError, BrokenPipeError):
                # A connection the broker dropped (e.g. idle): one retry on a fresh one.
                self._drop()
                try:
                    reply = self._exchange(line)
                except OSError as e:
                    self._drop()
                    raise RmqdError(f'rmqd ctl {command}: control socket {self.path}: {e}') \
                        from e
            except OSError as e:
                self._drop()
                raise RmqdError(f'rmqd ctl {command}: control socket {self.path}: {e}') from e
        try:
            answer = json.loads(reply)
        except ValueError as e:
            raise RmqdError(f'rmqd ctl {command}: not JSON: {reply[:200]!r}') from e
        if not isinstance(answer, dict) or answer.get('ok') is not True:
            error = answer.get('error') if isinstance(answer, dict) else answer
            raise CtlError(command, error or f'unexpected reply {reply[:200]!r}')
        return answer

    def close(self):
        with self._lock:
            self._drop()


class Vhost:
    """A vhost of a running rmqd and how to connect to it."""

    def __init__(self, server, name):
        self.server = server
        self.name = name
        self.deleted = False

    host = property(lambda self: self.server.host)
    port = property(lambda self: self.server.port)
    username = property(lambda self: self.server.username)
    password = property(lambda self: self.server.password)

    @property
    def url(self):
        """amqp://guest:guest@127.0.0.1:PORT/NAME (the name percent-encoded): pika, aio-pika,
        kombu, py-amqp, lapin, amqprs all read it."""
        return self.server.url_for(self.name)

    @property
    def kombu_url(self):
        """The URL as kombu's documentation writes it: `amqp://user:pass@host:port//` for the
        vhost "/", else the percent-encoded name after one slash (kombu unquotes the path)."""
        if self.name == '/':
            base = self.server.url_for('/')
            return base[:-len('%2F')] + '/'
        return self.url

    def pika_parameters(self, **options):
        """pika.URLParameters for this vhost; keyword options become URL query parameters
        (e.g. heartbeat=5, connection_attempts=3)."""
        import pika  # only for users of pika
        url = self.url
        if options:
            url += '?' + '&'.join(f'{k}={quote(str(v), safe="")}' for k, v in options.items())
        return pika.URLParameters(url)

    def delete(self):
        """Deletes the vhost: its connections are closed, its queues and exchanges deleted."""
        self.server.delete_vhost(self.name)
        self.deleted = True

    def __repr__(self):
        return f'<rmqd vhost {self.name!r} {self.url}>'


def _tail(path, limit=4000):
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            text = f.read().decode(errors='replace')
    except OSError:
        return ''
    if size > limit:
        text = '...' + text[text.find('\n') + 1:] if '\n' in text else text
    return text.strip()


_VHOST_UNSAFE = re.compile(r'[^A-Za-z0-9_.-]+')


class Rmqd:
    """One rmqd process: in memory (--ephemeral), on 127.0.0.1, with a control socket.

    binary: the executable (see find_binary). port: 0 for a free one (the default); the port
    it got is kept by restart(). args: more command-line arguments. definitions: a RabbitMQ
    definitions JSON file loaded at start-up. log_file: where its stdout and stderr go
    (appended); by default a file in its temporary directory, deleted by stop()."""

    def __init__(self, binary, *, port=0, host='127.0.0.1', args=(), definitions=None,
                 log_level='warn', log_file=None, startup_timeout=DEFAULT_STARTUP_TIMEOUT,
                 exit_with_parent=True):
        self.binary = str(binary)
        self.requested_port = int(port)
        self.bind = host
        self.args = [str(a) for a in args]
        self.definitions = str(definitions) if definitions else None
        self.log_level = log_level
        self.log_file = str(log_file) if log_file else None
        self.startup_timeout = float(startup_timeout)
        self.exit_with_parent = exit_with_parent
        self.proc = None
        self.tmpdir = None
        self.url = None
        self.host = self.port = self.username = self.password = None
        self.vhost = None
        self.ctl = None

    # -- life cycle ----------------------------------------------------------------------

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def ctl_socket(self):
        return os.path.join(self.tmpdir, 'ctl.sock') if self.tmpdir else None

    @property
    def log_path(self):
        if self.log_file:
            return self.log_file
        return os.path.join(self.tmpdir, 'rmqd.log') if self.tmpdir else None

    def command(self):
        port = self.port if self.port is not None else self.requested_port
        # --config /dev/null: a test broker must not pick up the machine's /etc/rmqd/rmqd.conf
        # (its listeners and users) or $RMQD_CONFIG_FILE.
        cmd = [self.binary, '--config', os.devnull, '--port', str(port), '--bind', self.bind,
               '--ephemeral', '--log-level', self.log_level, '--ctl-socket', self.ctl_socket,
               '--ready-file', os.path.join(self.tmpdir, 'ready')]
        if self.exit_with_parent:
            cmd.append('--exit-with-parent')
        if self.definitions:
            cmd += ['--definitions', self.definitions]
        return cmd + self.args

    def start(self):
        """Starts rmqd and waits until it accepts connections; returns self."""
        if self.running:
            raise RmqdError(f'rmqd is already running (pid {self.proc.pid})')
        if self.tmpdir is None:
            # Short (a Unix socket path is limited to ~100 bytes) and private to this process.
            self.tmpdir = tempfile.mkdtemp(prefix='rmqd-')
        ready = os.path.join(self.tmpdir, 'ready')
        for stale in (ready, self.ctl_socket):
            if os.path.lexists(stale):
                os.unlink(stale)
        cmd = self.command()
        with open(self.log_path, 'ab') as log:
            log.write(f'$ {" ".join(cmd)}\n'.encode())
            log.flush()
            try:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as e:
                raise StartupError(f'cannot run {self.binary}: {e}. ' + HOW_TO_GET) from e
        deadline = time.monotonic() + self.startup_timeout
        while True:
            line = None
            if os.path.exists(ready):
                with open(ready) as f:
                    line = f.read().strip()
            if line:
                break
            status = self.proc.poll()
            if status is not None:
                self.proc.stdin.close()
                self.proc = None
                raise StartupError(
                    f'rmqd exited with status {status} before accepting connections.\n'
                    f'command: {" ".join(cmd)}\n--- its output ({self.log_path}) ---\n'
                    f'{_tail(self.log_path)}')
            if time.monotonic() > deadline:
                self._kill()
                raise StartupError(
                    f'rmqd did not become ready within {self.startup_timeout:g}s (killed it).\n'
                    f'command: {" ".join(cmd)}\n--- its output ({self.log_path}) ---\n'
                    f'{_tail(self.log_path)}')
            time.sleep(0.01)
        self._parse_url(line)
        if self.ctl is None:
            self.ctl = CtlClient(self.ctl_socket)
        return self

    def _parse_url(self, line):
        parts = urlsplit(line)
        if parts.scheme != 'amqp' or not parts.port:
            self.stop()
            raise StartupError(f'rmqd announced {line!r}, not an amqp:// URL with a port')
        self.host = parts.hostname
        self.port = parts.port
        self.username = unquote(parts.username or 'guest')
        self.password = unquote(parts.password or 'guest')
        self.vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else '/'
        # Spelled out (the vhost always present, percent-encoded), whatever rmqd printed.
        self.url = self.url_for(self.vhost)

    def _kill(self):
        if self.proc is None:
            return
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc = None

    def stop(self, timeout=DEFAULT_STOP_TIMEOUT):
        """SIGTERM (a graceful shutdown), SIGKILL after `timeout` s. Returns the seconds it
        took; raises RmqdError if it had to be killed. The port is kept for restart()."""
        if self.ctl is not None:
            self.ctl.close()
        if self.proc is None:
            return 0.0
        t = time.monotonic()
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                killed = True
        if killed:
            self._kill()
        else:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc = None
        took = time.monotonic() - t
        if killed:
            raise RmqdError(f'rmqd ignored SIGTERM for {timeout:g}s: killed it')
        return took

    def kill(self):
        """SIGKILL: the broker dies without a word to its clients."""
        if self.ctl is not None:
            self.ctl.close()
        self._kill()

    def restart(self, timeout=DEFAULT_STOP_TIMEOUT):
        """Stops it and starts it again on the same port (everything in it is gone)."""
        self.stop(timeout)
        return self.start()

    def close(self):
        """Stops it (if running) and removes its temporary directory."""
        try:
            self.stop()
        finally:
            if self.tmpdir:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = None

    def __enter__(self):
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    # -- administration ------------------------------------------------------------------

    def _ctl(self):
        if self.ctl is None or not self.running:
            raise RmqdError('rmqd is not running')
        return self.ctl

    def url_for(self, vhost):
        """The AMQP URL of a vhost of this broker (the name percent-encoded)."""
        return amqp_url(self.host, self.port, self.username, self.password, vhost)

    def add_vhost(self, name=None, *, user=None, configure='.*', write='.*', read='.*'):
        """Creates a vhost (a unique name if none given) and gives `user` (default: the
        default user, guest) these permissions there. Returns a Vhost."""
        if name is None:
            name = self.unique_vhost_name()
        ctl = self._ctl()
        ctl.call('add_vhost', name)
        ctl.call('set_permissions', user or self.username, configure, write, read, vhost=name)
        return Vhost(self, name)

    def delete_vhost(self, name):
        """Deletes a vhost: closes its connections, deletes its queues and exchanges."""
        self._ctl().call('delete_vhost', name)

    def ctl_call(self, command, *args, vhost=None):
        """Any command of the control socket (rabbitmqctl's names), e.g.
        ctl_call('add_user', 'alice', 's3cret')."""
        return self._ctl().call(command, *args, vhost=vhost)

    @staticmethod
    def unique_vhost_name(hint=''):
        hint = _VHOST_UNSAFE.sub('-', hint).strip('-')[:40]
        return f'{hint or "test"}-{uuid.uuid4().hex[:10]}'

    def __repr__(self):
        state = f'pid {self.pid} at {self.url}' if self.running else 'not running'
        return f'<rmqd {self.binary} {state}>'
