"""pytest plugin loaded by run.py (`-p conformance_plugin`) into the clients' own test runs.

It changes no test. It
- records each test's node id in the JUnit XML (as a `nodeid` property), so run.py reports
  `t/integration/test_rmq.py::test_connect[plain]` rather than a dotted class name;
- skips the tests EXPECTED.md lists as "not run" (run.py passes them in RMQD_CONFORMANCE_SKIP as
  a JSON object, node id -> reason), so they show up as skipped instead of vanishing;
- registers the suites' `flaky` and `env` markers. pytest-rerunfailures is deliberately not
  installed: every test runs once, so a test that passes only on a rerun is reported.
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
