#!/usr/bin/env python3
"""Run AMQP client libraries' own live-broker test suites against rmqd (or any broker).

The suites are the published sources of the clients, at pinned versions, from the package
registries (PyPI via pip, crates.io via cargo), with their tests unchanged:

  py-amqp  amqp 5.4.2 (PyPI sdist)    t/integration/
  kombu    kombu 5.7.0 (PyPI sdist)   t/integration/test_py_amqp.py (the py-amqp transport)
  lapin    lapin 4.12.3 (crates.io)   tests/*.rs
  amqprs   amqprs 2.1.5 (crates.io)   tests/*.rs

and suites of our own:

  openstack    conformance/openstack/: OpenStack's RPC and notification traffic as
               oslo.messaging produces it with kombu 5.7.0. It starts (and restarts) rmqd
               itself, from RMQD_BIN on AMQP_PORT, through the pytest-rmqd plugin.
  tutorials    conformance/tutorials/: RabbitMQ's six tutorials with pika and kombu, a vhost
               per test (pytest-rmqd's rmqd_vhost).
  pytest-rmqd  python/pytest-rmqd/tests/: the pytest plugin's own tests (pika, kombu,
               aio-pika, pytester). Only with --broker rmqd.

rmqd is started through pytest-rmqd (python/pytest-rmqd, installed into every Python suite's
virtualenv): by the plugin inside pytest for the Python suites, by its launcher
(pytest_rmqd.launcher, standard library only, imported from the source tree) for the crates.

Everything is downloaded and built under target/conformance/ of the workspace. Python suites get
a virtualenv each (target/conformance/venv/<suite>); the crates are unpacked by cargo itself
(a throwaway project depending on the exact versions, `cargo metadata`), copied to
target/conformance/src/ and tested with their published Cargo.lock (`--locked`).

  python3 conformance/suites/run.py                         # build rmqd, run every suite
  python3 conformance/suites/run.py --suite kombu --suite lapin
  python3 conformance/suites/run.py --broker external --port 5672   # e.g. against RabbitMQ

With --broker rmqd (the default) every suite gets a fresh rmqd on a free port of 127.0.0.1,
stopped afterwards. Prints one line per suite `SUITE: N passed, N failed, N skipped` and a total;
exits non-zero when a test fails that EXPECTED.md does not list, or when a suite could not run.
See README.md in this directory.
"""

import argparse
import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = ROOT / 'target' / 'conformance'
EXPECTED_MD = HERE / 'EXPECTED.md'

# The pytest plugin that starts rmqd, installed into each Python suite's venv; its launcher
# (standard library only) starts rmqd for the crates' suites, imported from the source tree.
PLUGIN = ROOT / 'python' / 'pytest-rmqd'
# Its build backend, for `pip install --no-build-isolation` (no unpinned download at build time).
PLUGIN_BUILD_PINS = ['flit_core==4.2.0']
sys.dont_write_bytecode = True          # keep the source tree free of __pycache__
sys.path.insert(0, str(PLUGIN / 'src'))
from pytest_rmqd.launcher import Rmqd as RmqdServer, RmqdError  # noqa: E402

HOST = '127.0.0.1'
# Users the suites log in as, created at rmqd start-up; guest/guest on vhost / is rmqd's default.
# amqprs's tests hard-code user/bitnami (upstream runs them against the bitnami RabbitMQ image).
RMQD_USERS = ['user:bitnami']

PY_SUITES = {
    'py-amqp': {
        'dist': 'amqp',
        'version': '5.4.2',
        # amqp's requirements/test.txt: pytest>=6.2.5,<=8.0.0
        'pins': ['amqp==5.4.2', 'vine==5.1.0', 'pytest==8.0.0', 'pluggy==1.7.0',
                 'iniconfig==2.3.1', 'packaging==26.3', 'pytest-timeout==2.4.0'],
        'tests': ['t/integration'],
        # The session's rmqd from pytest-rmqd; conformance_plugin exports its port as
        # RABBITMQ_HOST / RABBITMQ_5672_TCP, what the suite reads.
        'broker': 'plugin',
    },
    'kombu': {
        'dist': 'kombu',
        'version': '5.7.0',
        # kombu's requirements/test.txt: pytest==9.1.1
        'pins': ['kombu==5.7.0', 'amqp==5.4.2', 'vine==5.1.0', 'pytest==9.1.1',
                 'pluggy==1.7.0', 'iniconfig==2.3.1', 'packaging==26.3', 'Pygments==2.21.0',
                 'pytest-timeout==2.4.0'],
        'tests': ['t/integration/test_py_amqp.py'],
        'broker': 'plugin',
    },
    'openstack': {
        # Ours, not a published suite: no sdist; pins from its own requirements file.
        'local': ROOT / 'conformance' / 'openstack',
        'requirements': ROOT / 'conformance' / 'openstack' / 'requirements.txt',
        'tests': ['.'],
        # Starts rmqd itself (RMQD_BIN, AMQP_PORT; with pytest-rmqd's rmqd_factory, one per
        # module): its reconnection test restarts the broker.
        'broker': 'suite',
    },
    'tutorials': {
        # Ours: the RabbitMQ tutorials (also run by `cargo test`, against an in-process rmqd).
        'local': ROOT / 'conformance' / 'tutorials',
        'requirements': ROOT / 'conformance' / 'requirements.txt',
        'tests': ['.'],
        # Its conftest asks pytest-rmqd for a vhost per test (AMQP_URL with --broker external).
        'broker': 'suite',
    },
    'pytest-rmqd': {
        # The plugin's own tests; they start rmqd (and fake ones) themselves.
        'local': PLUGIN,
        'requirements': PLUGIN / 'tests' / 'requirements.txt',
        'tests': ['tests'],
        'broker': 'suite',
        'rmqd_only': True,
    },
}

CRATE_SUITES = {
    'lapin': {
        'crate': 'lapin',
        'version': '4.12.3',
        # The default features minus rustls: the tests use plain amqp:// only, and rustls pulls
        # in aws-lc-sys, minutes of C compilation on a 2-core CI machine. `smol` adds
        # tests/smol.rs (required-features = ["smol"]).
        'cargo_args': ['--no-default-features', '--features', 'default-runtime,smol'],
    },
    'amqprs': {
        'crate': 'amqprs',
        'version': '2.1.5',
        'cargo_args': [],
    },
}

# In the order they run (the suites added with pytest-rmqd last).
ALL_SUITES = ['py-amqp', 'kombu', 'openstack', 'lapin', 'amqprs', 'tutorials', 'pytest-rmqd']
assert sorted(ALL_SUITES) == sorted([*PY_SUITES, *CRATE_SUITES])

PYTEST_TIMEOUT = 120      # per test (pytest-timeout)
SUITE_TIMEOUT = 900       # per pytest run / per test binary
BROKER_START_TIMEOUT = 15


class SetupError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def run_logged(cmd, logfile, **kw):
    """Runs cmd with output appended to logfile; raises SetupError with the tail on failure."""
    with open(logfile, 'a') as out:
        out.write(f'\n$ {" ".join(map(str, cmd))}\n')
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, **kw)
    if proc.returncode != 0:
        tail = Path(logfile).read_text(errors='replace').splitlines()[-30:]
        raise SetupError(f'{" ".join(map(str, cmd))} exited {proc.returncode}; '
                         f'{logfile}:\n' + '\n'.join(tail))


# --- EXPECTED.md -----------------------------------------------------------------------------

def read_expected():
    """Returns ({id: reason} of tests allowed to fail, {id: reason} of tests not run,
    {id: reason} of tests not run against an external broker).

    Rows of the tables look like  | `suite:test-id` | fails | reason |  (or `not run`, or
    `not run (external)`)."""
    fails, skips, skips_external = {}, {}, {}
    if not EXPECTED_MD.exists():
        return fails, skips, skips_external
    row = re.compile(r'^\|\s*`([^`]+)`\s*\|\s*([^|]*?)\s*\|\s*(.*?)\s*\|?\s*$')
    for line in EXPECTED_MD.read_text().splitlines():
        m = row.match(line)
        if not m:
            continue
        test_id, kind, reason = m.groups()
        kind = kind.strip().lower()
        if kind.startswith('not run'):
            (skips_external if 'external' in kind else skips)[test_id] = reason
        else:
            fails[test_id] = reason
    return fails, skips, skips_external


def for_suite(ids, suite):
    prefix = suite + ':'
    return {k[len(prefix):]: v for k, v in ids.items() if k.startswith(prefix)}


# --- brokers ---------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


class Rmqd:
    """rmqd for a crate's suite, on a given port (amqprs's is compiled into its tests), started
    with pytest-rmqd's launcher."""

    def __init__(self, binary, port, logfile):
        self.server = RmqdServer(binary, port=port, args=rmqd_args(), log_file=logfile,
                                 startup_timeout=BROKER_START_TIMEOUT)
        self.logfile = logfile

    def __enter__(self):
        Path(self.logfile).write_text('')
        try:
            self.server.start()
        except RmqdError as e:
            self.server.close()
            raise SetupError(f'{e}\n(log: {self.logfile})') from None
        return self

    def __exit__(self, *exc):
        try:
            self.server.close()
        except RmqdError as e:
            log(f'note: {e}')


def rmqd_args():
    args = []
    for user in RMQD_USERS:
        args += ['--user', user]
    return args


class External:
    def __init__(self, port):
        self.port = port

    def __enter__(self):
        if not port_open(self.port):
            raise SetupError(f'nothing listens on {HOST}:{self.port}')
        return self

    def __exit__(self, *exc):
        pass


def build_rmqd():
    log('building rmqd: cargo build --release -p rmqd')
    t = time.monotonic()
    proc = subprocess.run(['cargo', 'build', '--release', '-p', 'rmqd'], cwd=ROOT)
    if proc.returncode != 0:
        raise SetupError('cargo build --release -p rmqd failed')
    log(f'built rmqd in {time.monotonic() - t:.0f}s')
    return ROOT / 'target' / 'release' / 'rmqd'


# --- results ---------------------------------------------------------------------------------

class Result:
    def __init__(self, suite):
        self.suite = suite
        self.tests = {}          # test id -> (outcome, message); outcome passed|failed|skipped
        self.error = None        # the suite could not run (download, build, broker, crash)
        self.prepare_s = 0.0
        self.run_s = 0.0

    def add(self, test_id, outcome, message=''):
        rank = {'passed': 0, 'skipped': 1, 'failed': 2}
        old = self.tests.get(test_id)
        if old is None or rank[outcome] > rank[old[0]]:
            self.tests[test_id] = (outcome, message)

    def count(self, outcome):
        return sum(1 for o, _ in self.tests.values() if o == outcome)


# --- Python suites ---------------------------------------------------------------------------

def venv_python(suite):
    return CACHE / 'venv' / suite / 'bin' / 'python'


def suite_pins(spec):
    if 'requirements' not in spec:
        return spec['pins']
    lines = (line.split('#', 1)[0].strip() for line in spec['requirements'].read_text()
             .splitlines())
    return [line for line in lines if line]


def plugin_digest():
    """Changes when the plugin's source does (then it is installed again)."""
    h = hashlib.sha256()
    for path in sorted([PLUGIN / 'pyproject.toml', PLUGIN / 'README.md',
                        *(PLUGIN / 'src').rglob('*.py')]):
        h.update(str(path.relative_to(PLUGIN)).encode() + b'\0' + path.read_bytes() + b'\0')
    return h.hexdigest()


def install_plugin(suite, logfile):
    """pip install python/pytest-rmqd into the suite's venv (again when its source changed).
    Built from a copy: pip would leave build/ in the source tree."""
    stamp = CACHE / 'venv' / suite / '.pytest-rmqd-installed'
    digest = plugin_digest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    build = CACHE / 'build' / 'pytest-rmqd'
    shutil.rmtree(build, ignore_errors=True)
    shutil.copytree(PLUGIN, build, ignore=shutil.ignore_patterns(
        'tests', '__pycache__', '*.pyc', 'build', '*.egg-info', '.pytest_cache'))
    run_logged([str(venv_python(suite)), '-m', 'pip', 'install', '-q',
                '--disable-pip-version-check', '--no-deps', '--no-build-isolation',
                '--force-reinstall', str(build)], logfile)
    shutil.rmtree(build, ignore_errors=True)
    stamp.write_text(digest)


def prepare_python(suite, logfile):
    spec = PY_SUITES[suite]
    venv = CACHE / 'venv' / suite
    stamp = venv / '.conformance-pins'
    pin_list = suite_pins(spec)
    pin_list += [p for p in PLUGIN_BUILD_PINS if p not in pin_list]
    pins = '\n'.join(pin_list)
    if not (stamp.exists() and stamp.read_text() == pins and venv_python(suite).exists()):
        shutil.rmtree(venv, ignore_errors=True)
        run_logged([sys.executable, '-m', 'venv', str(venv)], logfile)
        run_logged([str(venv_python(suite)), '-m', 'pip', 'install', '-q',
                    '--disable-pip-version-check', *pin_list], logfile)
        stamp.write_text(pins)
    install_plugin(suite, logfile)

    if 'local' in spec:
        # Our own suite, run in place.
        return spec['local']

    # The published sdist, tests included.
    dist, version = spec['dist'], spec['version']
    downloads = CACHE / 'downloads'
    downloads.mkdir(parents=True, exist_ok=True)

    def find():
        for p in downloads.iterdir():
            if p.name.lower() == f'{dist}-{version}.tar.gz'.lower():
                return p
        return None

    sdist = find()
    if sdist is None:
        run_logged([str(venv_python(suite)), '-m', 'pip', 'download', '-q',
                    '--disable-pip-version-check', '--no-binary', ':all:', '--no-deps',
                    '-d', str(downloads), f'{dist}=={version}'], logfile)
        sdist = find()
        if sdist is None:
            raise SetupError(f'pip download left no {dist}-{version}.tar.gz in {downloads}')

    # A pristine copy every run (a second or less).
    src_root = CACHE / 'src'
    src = src_root / f'{dist}-{version}'
    shutil.rmtree(src, ignore_errors=True)
    src_root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, 'data_filter'):
            tar.extractall(src_root, filter='data')
        else:
            tar.extractall(src_root)
    if not src.is_dir():
        raise SetupError(f'{sdist} did not unpack into {src}')
    return src


def run_python(suite, src, port, skips, logfile, result, rmqd=None):
    """rmqd: the binary (None with --broker external), given to pytest-rmqd in the suite's
    pytest: the plugin starts it there (spec 'broker': 'plugin': the session's broker, made
    known to the suite by conformance_plugin; 'suite': the suite asks the plugin itself).
    port: the external broker's, or the port to start rmqd on (None: a free one)."""
    spec = PY_SUITES[suite]
    xml = CACHE / 'results' / f'{suite}.xml'
    xml.parent.mkdir(parents=True, exist_ok=True)
    if xml.exists():
        xml.unlink()
    env = dict(os.environ)
    env.update({
        'PYTHONPATH': str(HERE),
        'RMQD_CONFORMANCE_SKIP': json.dumps(skips),
        'PYTHONDONTWRITEBYTECODE': '1',
    })
    for name in ('RMQD_BIN', 'RMQD_LOG', 'RMQD_CONFORMANCE_BROKER', 'AMQP_URL', 'AMQP_PORT',
                 'RABBITMQ_HOST', 'RABBITMQ_5672_TCP'):
        env.pop(name, None)
    rmqd_log = CACHE / 'logs' / f'rmqd-{suite}.log'
    plugin_args = []
    if rmqd is None:
        env.update({
            # What the suites read: t/integration/test_rmq.py, test_py_amqp.py;
            # conformance/openstack; conformance/tutorials.
            'RABBITMQ_HOST': HOST,
            'RABBITMQ_5672_TCP': str(port),
            'AMQP_PORT': str(port),
            'AMQP_URL': f'amqp://guest:guest@{HOST}:{port}/%2F',
        })
    else:
        rmqd_log.write_text('')
        plugin_args = [f'--rmqd-bin={rmqd}', f'--rmqd-log={rmqd_log}']
        if spec['broker'] == 'plugin':
            env['RMQD_CONFORMANCE_BROKER'] = 'plugin'
            plugin_args.append(f'--rmqd-args={shlex.join(rmqd_args())}')
            if port:
                plugin_args.append(f'--rmqd-port={port}')
        if suite == 'openstack':
            # conformance/openstack: the rmqd to start (one per module) and where; its log.
            env.update({'RMQD_BIN': str(rmqd), 'RMQD_LOG': str(rmqd_log)})
            if port:
                env['AMQP_PORT'] = str(port)
    cmd = [str(venv_python(suite)), '-m', 'pytest', *spec['tests'],
           '-p', 'conformance_plugin', '-p', 'no:cacheprovider',
           f'--junitxml={xml}', '-o', 'junit_family=xunit2', '-o', 'addopts=',
           f'--timeout={PYTEST_TIMEOUT}', '-rfEs', '-v', *plugin_args]
    with open(logfile, 'a') as out:
        out.write(f'\n$ {" ".join(cmd)}\n')
        out.flush()
        proc = subprocess.Popen(cmd, cwd=src, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(SUITE_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            result.error = f'pytest did not finish within {SUITE_TIMEOUT}s; see {logfile}'
    if not xml.exists():
        result.error = result.error or f'pytest wrote no JUnit XML (exit {proc.returncode}); ' \
                                       f'see {logfile}'
        return
    for case in ET.parse(xml).getroot().iter('testcase'):
        nodeid = None
        for prop in case.iter('property'):
            if prop.get('name') == 'nodeid':
                nodeid = prop.get('value')
        if nodeid is None:
            nodeid = f'{case.get("classname")}::{case.get("name")}'
        outcome, message = 'passed', ''
        for child in case:
            if child.tag in ('failure', 'error'):
                outcome = 'failed'
                message = (child.get('message') or '') + '\n' + (child.text or '')
                break
            if child.tag == 'skipped':
                outcome, message = 'skipped', child.get('message') or ''
        result.add(nodeid, outcome, message.strip())
    # exit 0: all passed; 1: some failed; 5: none collected. Anything else is trouble.
    if proc.returncode not in (0, 1) and not result.error:
        result.error = f'pytest exited {proc.returncode}; see {logfile}'


# --- Rust suites -----------------------------------------------------------------------------

def cargo_env():
    env = dict(os.environ)
    env.update({
        'CARGO_TARGET_DIR': str(CACHE / 'cargo-target'),
        # Smaller, faster test builds; nothing here needs debug info.
        'CARGO_PROFILE_DEV_DEBUG': '0',
        'CARGO_INCREMENTAL': '0',
    })
    return env


def fetch_crates(logfile):
    """Has cargo download and unpack the pinned crates; returns {name: source dir}."""
    proj = CACHE / 'fetch'
    (proj / 'src').mkdir(parents=True, exist_ok=True)
    deps = '\n'.join(f'{s["crate"]} = {{ version = "={s["version"]}", default-features = false }}'
                     for s in CRATE_SUITES.values())
    manifest = ('[package]\nname = "conformance-fetch"\nversion = "0.0.0"\nedition = "2021"\n'
                f'publish = false\n\n[dependencies]\n{deps}\n\n[workspace]\n')
    if not (proj / 'Cargo.toml').exists() or (proj / 'Cargo.toml').read_text() != manifest:
        (proj / 'Cargo.toml').write_text(manifest)
    (proj / 'src' / 'lib.rs').touch()
    with open(logfile, 'a') as out:
        proc = subprocess.run(['cargo', 'metadata', '--format-version', '1',
                               '--manifest-path', str(proj / 'Cargo.toml')],
                              stdout=subprocess.PIPE, stderr=out, env=cargo_env())
    if proc.returncode != 0:
        raise SetupError(f'cargo metadata failed; see {logfile}')
    found = {}
    for pkg in json.loads(proc.stdout)['packages']:
        for s in CRATE_SUITES.values():
            if pkg['name'] == s['crate'] and pkg['version'] == s['version']:
                found[pkg['name']] = Path(pkg['manifest_path']).parent
    return found


def port_patches(suite, port):
    """The one edit made to a suite: pointing it at the broker's port. {relative path: new text}
    from the pristine file's text. amqprs hard-codes localhost:5672 in tests/common/mod.rs."""
    if suite == 'amqprs':
        return {'tests/common/mod.rs': lambda text: text.replace(
            'OpenConnectionArguments::new("localhost", 5672, "user", "bitnami")',
            f'OpenConnectionArguments::new("localhost", {port}, "user", "bitnami")')}
    return {}


def prepare_crate(suite, registry_src, logfile):
    spec = CRATE_SUITES[suite]
    name = f'{spec["crate"]}-{spec["version"]}'
    pristine = CACHE / 'src' / f'{name}.orig'
    work = CACHE / 'src' / name
    stamp = work / '.conformance-copied'
    if not stamp.exists():
        for d in (pristine, work):
            shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(registry_src, pristine)
        shutil.copytree(registry_src, work)
        # The copy lives inside this workspace's directory tree: make it its own workspace root
        # so cargo does not take it for a member of ours.
        with open(work / 'Cargo.toml', 'a') as f:
            f.write('\n[workspace]\n')
        stamp.touch()
    return work


def apply_port(suite, work, port):
    spec = CRATE_SUITES[suite]
    pristine = CACHE / 'src' / f'{spec["crate"]}-{spec["version"]}.orig'
    for rel, edit in port_patches(suite, port).items():
        original = (pristine / rel).read_text()
        patched = edit(original)
        if patched == original and str(port) != '5672':
            raise SetupError(f'{suite}: could not point {rel} at port {port}')
        # Rewrite only on change: a new mtime rebuilds the test binaries.
        if (work / rel).read_text() != patched:
            (work / rel).write_text(patched)


def build_crate(suite, work, logfile):
    """Builds the test binaries; returns [(test target name, executable)]."""
    spec = CRATE_SUITES[suite]
    cmd = ['cargo', 'test', '--locked', '--no-run', '--message-format=json-render-diagnostics',
           *spec['cargo_args'], '--test', '*']
    with open(logfile, 'a') as out:
        out.write(f'\n$ {" ".join(cmd)}\n')
        out.flush()
        proc = subprocess.run(cmd, cwd=work, env=cargo_env(), stdout=subprocess.PIPE, stderr=out)
    if proc.returncode != 0:
        raise SetupError(f'{suite}: cargo test --no-run failed; see {logfile}')
    binaries = []
    for line in proc.stdout.decode(errors='replace').splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if (msg.get('reason') == 'compiler-artifact' and msg.get('executable')
                and msg['target']['kind'] == ['test']):
            binaries.append((msg['target']['name'], msg['executable']))
    if not binaries:
        raise SetupError(f'{suite}: cargo built no test binary; see {logfile}')
    return sorted(binaries)


def libtest_list(exe, cwd, env, *extra):
    proc = subprocess.run([exe, '--list', *extra], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)
    return [line[:-len(': test')] for line in proc.stdout.splitlines()
            if line.endswith(': test')]


def run_crate(suite, work, binaries, port, skips, logfile, result):
    env = cargo_env()
    env.update({
        # lapin's tests read AMQP_ADDR; amqprs's were pointed at the port by apply_port().
        'AMQP_ADDR': f'amqp://{HOST}:{port}/%2f',
        # What `cargo test` sets for a test binary.
        'CARGO_MANIFEST_DIR': str(work),
        'CARGO_PKG_NAME': CRATE_SUITES[suite]['crate'],
        'CARGO_PKG_VERSION': CRATE_SUITES[suite]['version'],
    })
    # lapin's tests set RUST_LOG=info when it is unset, logging every frame to stdout.
    env.setdefault('RUST_LOG', 'warn')
    for target, exe in binaries:
        names = libtest_list(exe, work, env)
        ignored = set(libtest_list(exe, work, env, '--ignored'))
        skip_here = {n: r for n, r in ((k.split('::', 1)[1], v) for k, v in skips.items()
                                       if k.split('::', 1)[0] == target)}
        args = [exe]
        for n in skip_here:
            args += ['--skip', n, '--exact']
        with open(logfile, 'a') as out:
            out.write(f'\n$ {" ".join(args)}\n')
            out.flush()
            start = out.tell()
            proc = subprocess.Popen(args, cwd=work, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            timed_out = False
            try:
                proc.wait(SUITE_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                timed_out = True
        text = Path(logfile).read_bytes()[start:].decode(errors='replace')
        outcome = parse_libtest(text)
        finished = bool(re.search(r'^test result: ', text, re.M)) and not timed_out
        for name in names:
            test_id = f'{target}::{name}'
            if name in skip_here:
                result.add(test_id, 'skipped', f'not run by the conformance runner: '
                                               f'{skip_here[name]}')
            elif name in ignored:
                result.add(test_id, 'skipped', '#[ignore]')
            elif name in outcome['failed']:
                result.add(test_id, 'failed', outcome['messages'].get(name, ''))
            elif name in outcome['ok'] or finished:
                result.add(test_id, 'passed')
            else:
                why = (f'timed out after {SUITE_TIMEOUT}s' if timed_out
                       else f'test binary exited {proc.returncode} before reporting it')
                result.add(test_id, 'failed', why)


def parse_libtest(text):
    ok, failed, messages = set(), set(), {}
    for m in re.finditer(r'^test (\S+)(?: - should panic)? \.\.\. (ok|FAILED|ignored)', text,
                         re.M):
        (ok if m.group(2) == 'ok' else failed if m.group(2) == 'FAILED' else set()).add(
            m.group(1))
    # The closing "failures:" list, and each failure's captured output.
    for block in re.finditer(r'^failures:\n((?:    \S+\n)+)', text, re.M):
        failed.update(line.strip() for line in block.group(1).splitlines())
    for m in re.finditer(r'^---- (\S+) stdout ----\n(.*?)(?=^---- |^failures:$|\Z)', text,
                         re.M | re.S):
        # The panic message, not the backtrace (RUST_BACKTRACE may be set); the log has it all.
        messages[m.group(1)] = m.group(2).split('stack backtrace:')[0].strip()
    ok -= failed
    return {'ok': ok, 'failed': failed, 'messages': messages}


# --- main ------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--broker', choices=['rmqd', 'external'], default='rmqd',
                    help='rmqd: start a fresh rmqd per suite (default); external: use the '
                         'broker already listening on 127.0.0.1:--port')
    ap.add_argument('--port', type=int,
                    help='external: the broker\'s port (default 5672); rmqd: the port to start '
                         'it on (default: a free one)')
    ap.add_argument('--suite', action='append', choices=ALL_SUITES,
                    help='a suite to run (repeatable; default: all)')
    ap.add_argument('--rmqd', type=Path,
                    help='the rmqd binary (default: cargo build --release -p rmqd, then '
                         'target/release/rmqd)')
    args = ap.parse_args()
    if args.suite:
        suites = [s for s in ALL_SUITES if s in args.suite]
    else:
        # The plugin's own tests need rmqd itself: not run against another broker.
        suites = [s for s in ALL_SUITES if args.broker == 'rmqd'
                  or not PY_SUITES.get(s, {}).get('rmqd_only')]

    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / 'logs').mkdir(exist_ok=True)
    expected_fail, not_run, not_run_external = read_expected()
    if args.broker == 'external':
        not_run = {**not_run, **not_run_external}
    t0 = time.monotonic()

    rmqd = None
    if args.broker == 'rmqd':
        try:
            rmqd = args.rmqd.resolve() if args.rmqd else build_rmqd()
        except SetupError as e:
            log(f'error: {e}')
            return 2
        if not rmqd.exists():
            log(f'error: no rmqd binary at {rmqd}')
            return 2

    results = []
    crate_sources = None
    for suite in suites:
        result = Result(suite)
        results.append(result)
        logfile = CACHE / 'logs' / f'{suite}.log'
        logfile.write_text('')
        skips = for_suite(not_run, suite)
        log(f'--- {suite}')
        try:
            t = time.monotonic()
            if args.broker == 'external' and PY_SUITES.get(suite, {}).get('rmqd_only'):
                raise SetupError(f'{suite} tests rmqd itself: run it with --broker rmqd')
            if suite in PY_SUITES:
                src = prepare_python(suite, logfile)
            else:
                if crate_sources is None:
                    crate_sources = fetch_crates(logfile)
                spec = CRATE_SUITES[suite]
                if spec['crate'] not in crate_sources:
                    raise SetupError(f'cargo did not fetch {spec["crate"]} {spec["version"]}')
                work = prepare_crate(suite, crate_sources[spec['crate']], logfile)
            if args.broker == 'external':
                port = args.port or 5672
            elif suite in PY_SUITES:
                port = args.port            # None: pytest-rmqd has rmqd pick a free one
            else:
                port = args.port or free_port()
            if suite in CRATE_SUITES:
                apply_port(suite, work, port)
                binaries = build_crate(suite, work, logfile)
            result.prepare_s = time.monotonic() - t

            t = time.monotonic()
            if args.broker == 'external':
                broker = External(port)
            elif suite in PY_SUITES:
                broker = contextlib.nullcontext()       # pytest-rmqd starts it in pytest
            else:
                broker = Rmqd(rmqd, port, CACHE / 'logs' / f'rmqd-{suite}.log')
            with broker:
                if suite in PY_SUITES:
                    run_python(suite, src, port, skips, logfile, result, rmqd)
                else:
                    run_crate(suite, work, binaries, port, skips, logfile, result)
            result.run_s = time.monotonic() - t
        except SetupError as e:
            result.error = str(e)
        except subprocess.TimeoutExpired as e:
            result.error = f'timed out: {e}'
        log(f'{suite}: prepared in {result.prepare_s:.0f}s, ran in {result.run_s:.0f}s '
            f'(log: {logfile.relative_to(ROOT)})')

    # Details: every failure, marked expected or not; expected failures that passed.
    unexpected = 0
    summary = {}
    for r in results:
        exp = for_suite(expected_fail, r.suite)
        summary[r.suite] = {'tests': {k: v[0] for k, v in r.tests.items()}, 'error': r.error,
                            'prepare_s': round(r.prepare_s, 1), 'run_s': round(r.run_s, 1)}
        for test_id, (outcome, message) in sorted(r.tests.items()):
            if outcome != 'failed':
                continue
            if test_id in exp:
                log(f'expected failure  {r.suite}:{test_id}')
                continue
            unexpected += 1
            log(f'UNEXPECTED FAILURE  {r.suite}:{test_id}')
            # The first line (pytest's short message) and the end, where the assertion is.
            lines = [line for line in message.splitlines() if line.strip()]
            shown = lines if len(lines) <= 16 else lines[:1] + ['...'] + lines[-14:]
            for line in shown:
                log(f'    {line}')
        for test_id in sorted(exp):
            outcome = r.tests.get(test_id, (None,))[0]
            if outcome == 'passed':
                log(f'note: expected to fail but passed  {r.suite}:{test_id}')
            elif outcome is None and not r.error:
                log(f'note: EXPECTED.md lists {r.suite}:{test_id}, which did not run')
        if r.error:
            log(f'ERROR  {r.suite}: {r.error}')
    (CACHE / 'results').mkdir(exist_ok=True)
    (CACHE / 'results' / f'summary-{args.broker}.json').write_text(
        json.dumps(summary, indent=1, sort_keys=True))

    log('')
    totals = [0, 0, 0]
    for r in results:
        counts = [r.count('passed'), r.count('failed'), r.count('skipped')]
        totals = [a + b for a, b in zip(totals, counts)]
        log(f'{r.suite}: {counts[0]} passed, {counts[1]} failed, {counts[2]} skipped')
    log(f'TOTAL: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped '
        f'({unexpected} unexpected failures, {time.monotonic() - t0:.0f}s)')
    if any(r.error for r in results):
        return 2
    return 1 if unexpected else 0


if __name__ == '__main__':
    sys.exit(main())
