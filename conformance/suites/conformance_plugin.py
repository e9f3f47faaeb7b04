"""pytest plugin loaded by run.py (`-p conformance_plugin`) into the clients' own test runs.

It changes no test. It
- records each test's node id in the JUnit XML (as a `nodeid` property), so run.py reports
  `t/integration/test_rmq.py::test_connect[plain]` rather than a dotted class name;
- skips the tests EXPECTED.md lists as "not run" (run.py passes them in RMQD_CONFORMANCE_SKIP as
  a JSON object, node id -> reason), so they show up as skipped instead of vanishing;
- registers the suites' `flaky` and `env` markers. pytest-rerunfailures is deliberately not
  installed: every test runs once, so a test that passes only on a rerun is reported;
- with RMQD_CONFORMANCE_BROKER=plugin (run.py sets it for py-amqp and kombu against rmqd),
  starts the broker: the session's `rmqd` of the pytest-rmqd plugin (installed into the suite's
  virtualenv; run.py passes --rmqd-bin, --rmqd-args, --rmqd-log), before the first test, and
  exports its address as RABBITMQ_HOST and RABBITMQ_5672_TCP, where the suites read it. If it
  does not start, the run stops (exit status 3: run.py reports the suite as not run).
"""

import json
import os

import pytest


def pytest_configure(config):
    config.addinivalue_line('markers', 'flaky(reruns, reruns_delay): inert, no rerun plugin')
    config.addinivalue_line('markers', 'env(name): the suite\'s broker marker, informational')


def pytest_collection_modifyitems(config, items):
    skip = json.loads(os.environ.get('RMQD_CONFORMANCE_SKIP') or '{}')
    for item in items:
        item.user_properties.append(('nodeid', item.nodeid))
        reason = skip.get(item.nodeid)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f'not run by the conformance runner: {reason}'))


@pytest.fixture(scope='session', autouse=True)
def _conformance_rmqd(request):
    if os.environ.get('RMQD_CONFORMANCE_BROKER') != 'plugin':
        return
    try:
        rmqd = request.getfixturevalue('rmqd')
    except pytest.fail.Exception as e:
        pytest.exit(f'pytest-rmqd could not start rmqd: {e}', returncode=3)
    os.environ['RABBITMQ_HOST'] = rmqd.host
    os.environ['RABBITMQ_5672_TCP'] = str(rmqd.port)
