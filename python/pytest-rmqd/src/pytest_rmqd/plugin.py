"""The pytest plugin: an rmqd broker per test session, a fresh vhost per test.

Fixtures:
  rmqd          (session)  the broker, started on first use, stopped at the end of the session
  rmqd_vhost    (function) a new vhost of that broker with permissions for its user, deleted
                           after the test (which closes the test's connections)
  rmqd_factory  (session)  starts more brokers (own port, own arguments): rmqd_factory(...) ->
                           a started Rmqd; any still running are stopped at the end
  rmqd_binary   (session)  the path of the rmqd executable
"""

import os
import shlex
from pathlib import Path

import pytest

from .launcher import DEFAULT_STARTUP_TIMEOUT, BinaryNotFound, Rmqd, RmqdError, find_binary

RMQD_FIXTURES = ('rmqd', 'rmqd_vhost', 'rmqd_factory', 'rmqd_binary')


def pytest_addoption(parser):
    group = parser.getgroup('rmqd', 'rmqd AMQP broker (pytest-rmqd)')
    group.addoption('--rmqd-bin', metavar='PATH', default=None,
                    help='the rmqd executable (default: ini rmqd_bin, $RMQD_BIN, else rmqd on '
                         'PATH)')
    group.addoption('--rmqd-args', metavar='ARGS', default=None,
                    help='more arguments for rmqd, one shell-quoted string, e.g. '
                         '"--heartbeat 5 --user alice:secret" (default: ini rmqd_args)')
    group.addoption('--rmqd-definitions', metavar='FILE', default=None,
                    help='a RabbitMQ definitions JSON file for rmqd to load at start-up '
                         '(default: ini rmqd_definitions)')
    group.addoption('--rmqd-port', metavar='PORT', type=int, default=None,
                    help='the session broker\'s port (default: a free one)')
    group.addoption('--rmqd-log', metavar='FILE', default=None,
                    help='append the session broker\'s output to FILE (with pytest-xdist: '
                         'FILE.<worker id>); default: a temporary file, deleted afterwards')
    parser.addini('rmqd_bin', 'the rmqd executable (relative to the ini file)', default='')
    parser.addini('rmqd_args', 'more arguments for rmqd (shell-quoted)', default='')
    parser.addini('rmqd_definitions', 'definitions JSON file for rmqd (relative to the ini '
                  'file)', default='')
    parser.addini('rmqd_startup_timeout', 'seconds to wait for rmqd to accept connections',
                  default=str(DEFAULT_STARTUP_TIMEOUT))


class Settings:
    """The plugin's options, resolved against the command line, the ini file and $RMQD_BIN."""

    def __init__(self, config):
        invocation = Path(str(config.invocation_params.dir))
        ini_dir = Path(str(config.inipath)).parent if config.inipath else Path(
            str(config.rootpath))

        def path_option(cli_name, ini_name):
            value = config.getoption(cli_name)
            if value:
                return str(invocation / os.path.expanduser(value))
            value = config.getini(ini_name)
            if value:
                return str(ini_dir / os.path.expanduser(value))
            return None

        bin_cli = config.getoption('rmqd_bin')
        if bin_cli and os.sep not in bin_cli:
            self.bin_option = bin_cli          # a bare name: looked up on PATH
        else:
            self.bin_option = path_option('rmqd_bin', 'rmqd_bin')
        self.definitions = path_option('rmqd_definitions', 'rmqd_definitions')
        args = config.getoption('rmqd_args')
        self.args = shlex.split(args if args is not None else config.getini('rmqd_args'))
        self.port = config.getoption('rmqd_port') or 0
        log = config.getoption('rmqd_log')
        worker = os.environ.get('PYTEST_XDIST_WORKER')
        if log and worker:
            log = f'{log}.{worker}'
        self.log = str(invocation / log) if log else None
        self.startup_timeout = float(config.getini('rmqd_startup_timeout'))
        self._binary = None

    def binary(self):
        """The executable's path; raises BinaryNotFound with how to get one."""
        if self._binary is None:
            self._binary = find_binary(self.bin_option)
        return self._binary


_SETTINGS = pytest.StashKey[Settings]()


def _settings(config):
    if _SETTINGS not in config.stash:
        config.stash[_SETTINGS] = Settings(config)
    return config.stash[_SETTINGS]


def pytest_report_header(config):
    settings = _settings(config)
    try:
        return f'rmqd: {settings.binary()}'
    except BinaryNotFound:
        return 'rmqd: not found (tests using the rmqd fixtures will not run)'


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """A missing binary is a usage error, reported once, when a selected test needs rmqd.
    (Not in a pytest-xdist worker, where it would crash the worker: there the fixtures fail
    with the same message.)"""
    if hasattr(config, 'workerinput'):
        return
    if not any(name in getattr(item, 'fixturenames', ()) for item in items
               for name in RMQD_FIXTURES):
        return
    try:
        _settings(config).binary()
    except BinaryNotFound as e:
        raise pytest.UsageError(str(e)) from None


def _start_or_fail(server):
    try:
        server.start()
        return
    except RmqdError as e:
        error = str(e)
    server.close()
    pytest.fail(error, pytrace=False)


@pytest.fixture(scope='session')
def rmqd_binary(pytestconfig):
    """The rmqd executable (--rmqd-bin, ini rmqd_bin, $RMQD_BIN, else rmqd on PATH)."""
    try:
        return _settings(pytestconfig).binary()
    except BinaryNotFound as e:
        error = str(e)
    pytest.fail(error, pytrace=False)


@pytest.fixture(scope='session')
def rmqd_factory(pytestconfig, rmqd_binary):
    """rmqd_factory(port=0, args=(), definitions=None, log_file=None, start=True) -> Rmqd.

    A broker of the caller's own, with the session's binary; the session's --rmqd-args and
    --rmqd-definitions are not applied (pass them). Stop it with .close() (or .stop(); a
    stopped one can .start() again on the same port); any left running are closed at the
    end of the session."""
    settings = _settings(pytestconfig)
    made = []

    def make(port=0, args=(), definitions=None, log_file=None, start=True, **options):
        options.setdefault('startup_timeout', settings.startup_timeout)
        server = Rmqd(rmqd_binary, port=port, args=args, definitions=definitions,
                      log_file=log_file, **options)
        made.append(server)
        if start:
            _start_or_fail(server)
        return server

    yield make
    errors = []
    for server in made:
        try:
            server.close()
        except RmqdError as e:
            errors.append(str(e))
    if errors:
        pytest.fail('; '.join(errors), pytrace=False)


@pytest.fixture(scope='session')
def rmqd(pytestconfig, rmqd_binary):
    """The session's rmqd: .url, .host, .port, .username, .password, .vhost ("/"),
    .add_vhost(name=None) -> Vhost, .delete_vhost(name), .url_for(vhost), .ctl_call(...).

    In memory, on 127.0.0.1, a free port; with pytest-xdist one per worker."""
    settings = _settings(pytestconfig)
    server = Rmqd(rmqd_binary, port=settings.port, args=settings.args,
                  definitions=settings.definitions, log_file=settings.log,
                  startup_timeout=settings.startup_timeout)
    _start_or_fail(server)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def rmqd_vhost(request, rmqd):
    """A fresh vhost of the session's broker, named after the test, with all permissions for
    rmqd.username (guest): .name, .url, .kombu_url, .pika_parameters(), .host, .port,
    .username, .password, .delete(). Deleted after the test, closing its connections."""
    if not rmqd.running:
        pytest.fail(f'the session\'s rmqd is not running any more (exit status '
                    f'{rmqd.proc.returncode if rmqd.proc else "unknown"}); its log: '
                    f'{rmqd.log_path}', pytrace=False)
    vhost = rmqd.add_vhost(rmqd.unique_vhost_name(request.node.name))
    yield vhost
    if not vhost.deleted and rmqd.running:
        vhost.delete()
