"""The plugin as a user meets it, in pytest sessions run by pytester: one broker per session,
a vhost per test that is gone afterwards, the options, and the errors when rmqd is missing or
does not start."""

import json
import os
import socket
import stat
import textwrap

import pytest

# A test file for the inner sessions: records what each test saw.
RECORDING_TESTS = '''
import json, os
import pika
import pytest

def record(rmqd, rmqd_vhost, name):
    with open(os.environ['RECORD'], 'a') as f:
        f.write(json.dumps({'test': name, 'pid': rmqd.pid, 'port': rmqd.port,
                            'vhost': rmqd_vhost.name, 'url': rmqd_vhost.url,
                            'worker': os.environ.get('PYTEST_XDIST_WORKER')}) + '\\n')

def test_one(rmqd, rmqd_vhost):
    record(rmqd, rmqd_vhost, 'one')

def test_two(rmqd, rmqd_vhost):
    record(rmqd, rmqd_vhost, 'two')

def test_three(rmqd, rmqd_vhost):
    record(rmqd, rmqd_vhost, 'three')
'''


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def listening(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=1):
            return True
    except OSError:
        return False


def run(pytester, *args):
    """An inner session in this process, without the plugins that would only add noise."""
    return pytester.runpytest('-p', 'no:cacheprovider', '-p', 'no:asyncio', *args)


def fake_rmqd(pytester, body):
    """An executable shell script standing in for rmqd."""
    path = pytester.path / 'fake-rmqd'
    path.write_text('#!/bin/sh\n' + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_one_broker_per_session_and_a_new_vhost_per_test(pytester, rmqd_binary, monkeypatch):
    record = pytester.path / 'record.jsonl'
    monkeypatch.setenv('RECORD', str(record))
    pytester.makepyfile(test_inner=RECORDING_TESTS)
    result = run(pytester, f'--rmqd-bin={rmqd_binary}')
    result.assert_outcomes(passed=3)
    seen = records(record)
    assert [r['test'] for r in seen] == ['one', 'two', 'three']
    # The same broker process and port for all three tests...
    assert len({r['pid'] for r in seen}) == 1
    assert len({r['port'] for r in seen}) == 1
    # ...a vhost of their own, named after the test...
    assert len({r['vhost'] for r in seen}) == 3
    assert all(r['vhost'].startswith(f'test_{r["test"]}-') for r in seen)
    # ...and, the session over, the broker is gone.
    assert not alive(seen[0]['pid'])
    assert not listening(seen[0]['port'])


def test_the_vhost_of_a_finished_test_is_deleted(pytester, rmqd_binary):
    pytester.makepyfile(test_inner='''
        import pika, pytest

        earlier = {}

        def test_first(rmqd_vhost):
            earlier['params'] = rmqd_vhost.pika_parameters(connection_attempts=1)
            connection = pika.BlockingConnection(earlier['params'])
            connection.channel().queue_declare('leftover')
            connection.close()

        def test_second(rmqd_vhost):
            with pytest.raises(pika.exceptions.AMQPConnectionError):
                pika.BlockingConnection(earlier['params'])
            connection = pika.BlockingConnection(rmqd_vhost.pika_parameters())
            channel = connection.channel()
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
                channel.queue_declare('leftover', passive=True)
            assert e.value.reply_code == 404
    ''')
    result = run(pytester, f'--rmqd-bin={rmqd_binary}')
    result.assert_outcomes(passed=2)


def test_each_xdist_worker_has_its_own_broker(pytester, rmqd_binary, monkeypatch):
    record = pytester.path / 'record.jsonl'
    monkeypatch.setenv('RECORD', str(record))
    pytester.makepyfile(test_inner=RECORDING_TESTS)
    result = pytester.runpytest_subprocess(f'--rmqd-bin={rmqd_binary}', '-n', '2',
                                           '--dist', 'each', '-p', 'no:cacheprovider',
                                           '-p', 'no:asyncio')
    result.assert_outcomes(passed=6)
    seen = records(record)
    by_worker = {}
    for r in seen:
        by_worker.setdefault(r['worker'], set()).add((r['pid'], r['port']))
    assert sorted(by_worker) == ['gw0', 'gw1']
    assert all(len(brokers) == 1 for brokers in by_worker.values())   # one per worker
    (a,), (b,) = by_worker.values()
    assert a != b                                                      # not shared
    assert len({r['vhost'] for r in seen}) == 6
    assert not alive(a[0]) and not alive(b[0])


def test_a_missing_binary_is_a_usage_error(pytester):
    pytester.makepyfile(test_inner='def test_needs_it(rmqd_vhost):\n    pass\n')
    missing = pytester.path / 'no' / 'rmqd'
    result = run(pytester, f'--rmqd-bin={missing}')
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert 'rmqd was not found' in err
    assert 'no such file' in err
    assert 'cargo build --release -p rmqd' in err
    result.stdout.no_fnmatch_line('*passed*')


def test_without_option_env_or_path_it_says_where_it_looked(pytester, monkeypatch):
    monkeypatch.delenv('RMQD_BIN', raising=False)
    empty = pytester.mkdir('empty-bin')
    monkeypatch.setenv('PATH', str(empty))
    pytester.makepyfile(test_inner='def test_needs_it(rmqd):\n    pass\n')
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    for hint in ('--rmqd-bin', 'RMQD_BIN', 'PATH', 'cargo build --release -p rmqd',
                 'cargo install'):
        assert hint in err


def test_a_missing_binary_under_xdist_fails_the_tests_that_need_it(pytester, monkeypatch):
    monkeypatch.delenv('RMQD_BIN', raising=False)
    monkeypatch.setenv('PATH', str(pytester.mkdir('empty-bin')))
    pytester.makepyfile(test_inner='''
        def test_plain():
            pass
        def test_needs_vhost(rmqd_vhost):
            pass
        def test_needs_broker(rmqd):
            pass
    ''')
    result = pytester.runpytest_subprocess('-n', '2', '-p', 'no:cacheprovider',
                                           '-p', 'no:asyncio')
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.no_fnmatch_line('*INTERNALERROR*')
    result.stdout.fnmatch_lines(['*rmqd was not found*cargo build --release -p rmqd*'])


def test_tests_that_do_not_use_rmqd_run_without_it(pytester, monkeypatch):
    monkeypatch.delenv('RMQD_BIN', raising=False)
    monkeypatch.setenv('PATH', str(pytester.mkdir('empty-bin')))
    pytester.makepyfile(test_inner='''
        import pytest
        def test_plain():
            pass
        def test_needs_broker(rmqd):
            pass
    ''')
    result = run(pytester, '-k', 'plain')
    result.assert_outcomes(passed=1, deselected=1)


def test_rmqd_bin_from_the_environment(pytester, rmqd_binary, monkeypatch):
    monkeypatch.setenv('RMQD_BIN', rmqd_binary)
    monkeypatch.setenv('PATH', str(pytester.mkdir('empty-bin')))
    pytester.makepyfile(test_inner='''
        def test_it(rmqd):
            assert rmqd.running
    ''')
    result = run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f'rmqd: {rmqd_binary}'])      # the report header


def test_a_broker_that_exits_at_startup_shows_its_output(pytester):
    fake = fake_rmqd(pytester, '''
        echo "error: unexpected argument '--frobnicate' found" >&2
        exit 2
    ''')
    pytester.makepyfile(test_inner='''
        def test_a(rmqd_vhost):
            pass
        def test_b(rmqd_vhost):
            pass
    ''')
    result = run(pytester, f'--rmqd-bin={fake}')
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([
        '*rmqd exited with status 2 before accepting connections*',
        "*error: unexpected argument '--frobnicate' found*",
    ])
    assert result.stdout.str().count('rmqd exited with status 2') >= 2


def test_a_broker_that_never_gets_ready_is_killed(pytester):
    pidfile = pytester.path / 'fake.pid'
    fake = fake_rmqd(pytester, f'''
        echo $$ > {pidfile}
        echo "starting very slowly" >&2
        exec sleep 600
    ''')
    pytester.makeini('[pytest]\nrmqd_startup_timeout = 1\n')
    pytester.makepyfile(test_inner='def test_a(rmqd):\n    pass\n')
    result = run(pytester, f'--rmqd-bin={fake}')
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        '*rmqd did not become ready within 1s (killed it)*',
        '*starting very slowly*',
    ])
    assert not alive(int(pidfile.read_text()))


def test_rmqd_args_reach_the_broker(pytester, rmqd_binary):
    """--rmqd-args: here another default user; rmqd.url and the vhosts' URLs use it."""
    pytester.makepyfile(test_inner='''
        import pika, pytest

        def test_alice(rmqd, rmqd_vhost):
            assert (rmqd.username, rmqd.password) == ('alice', 's3cret')
            assert rmqd_vhost.url.startswith('amqp://alice:s3cret@')
            pika.BlockingConnection(rmqd_vhost.pika_parameters()).close()
            guest = rmqd_vhost.url.replace('alice:s3cret', 'guest:guest')
            with pytest.raises(pika.exceptions.AMQPConnectionError):
                pika.BlockingConnection(pika.URLParameters(guest))
    ''')
    result = run(pytester, f'--rmqd-bin={rmqd_binary}',
                 '--rmqd-args=--default-user alice --default-pass s3cret')
    result.assert_outcomes(passed=1)


def test_definitions_are_loaded_and_the_log_is_kept(pytester, rmqd_binary):
    definitions = pytester.path / 'definitions.json'
    definitions.write_text(json.dumps({
        'vhosts': [{'name': '/'}],
        'queues': [{'name': 'preloaded', 'vhost': '/', 'durable': True, 'auto_delete': False,
                    'arguments': {}}],
        'exchanges': [{'name': 'preloaded.x', 'vhost': '/', 'type': 'fanout', 'durable': True,
                       'auto_delete': False, 'internal': False, 'arguments': {}}],
        'bindings': [{'source': 'preloaded.x', 'vhost': '/', 'destination': 'preloaded',
                      'destination_type': 'queue', 'routing_key': '', 'arguments': {}}],
    }))
    pytester.makepyfile(test_inner='''
        import pika

        def test_preloaded(rmqd):
            connection = pika.BlockingConnection(pika.URLParameters(rmqd.url))
            channel = connection.channel()
            channel.basic_publish('preloaded.x', 'any', b'via the binding')
            assert channel.basic_get('preloaded', auto_ack=True)[2] == b'via the binding'
            connection.close()
    ''')
    log = pytester.path / 'broker.log'
    result = run(pytester, f'--rmqd-bin={rmqd_binary}', f'--rmqd-definitions={definitions}',
                 f'--rmqd-log={log}')
    result.assert_outcomes(passed=1)
    first = log.read_text().splitlines()[0]
    assert first.startswith(f'$ {rmqd_binary} --config /dev/null --port 0 ')
    assert f'--definitions {definitions}' in first


def test_factory_brokers_restart_on_the_same_port(rmqd_factory, rmqd):
    server = rmqd_factory()
    try:
        assert server.port != rmqd.port
        import pika
        connection = pika.BlockingConnection(pika.URLParameters(server.url))
        connection.channel().queue_declare('transient-things')
        connection.close()
        port, pid = server.port, server.pid
        assert server.stop() < 5
        assert not listening(port)
        server.start()
        assert (server.port, server.running) == (port, True)
        assert server.pid != pid
        pid = server.pid
        # A new, empty broker: in memory, the queue went with the old one.
        connection = pika.BlockingConnection(pika.URLParameters(server.url))
        channel = connection.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            channel.queue_declare('transient-things', passive=True)
        connection.close()
    finally:
        server.close()
    assert not listening(port)
    assert not alive(pid)
