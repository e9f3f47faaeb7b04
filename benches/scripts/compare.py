#!/usr/bin/env python3
"""Runs rmqd-perf scenarios against rmqd and, with --with-rabbitmq, against RabbitMQ on the
same machine in the same run, then writes benches/RESULTS.md.

    python3 benches/scripts/compare.py                      # rmqd only, every scenario
    python3 benches/scripts/compare.py --with-rabbitmq      # both, side by side
    python3 benches/scripts/compare.py --with-rabbitmq --duration 5 \
        --scenarios throughput-auto,rpc,startup

Each case runs against a fresh rmqd (release build, on a free port, --broker-pid given so that
its CPU time and RSS are sampled), then against RabbitMQ. RabbitMQ is never touched unless
--with-rabbitmq is given. By default (--rabbitmq private) the script starts its own RabbitMQ
node on free ports with temporary data, log and plugin files and the same open-file limit as
rmqd, and stops it at the end: nothing else's traffic on 5672 is measured with it, and 10,000
connections fit. --rabbitmq system uses the node on --rabbitmq-uri (5672) instead, installing
rabbitmq-server with apt and starting it with `rabbitmq-server -detached` if needed.

Needs Linux (/proc), cargo, and for RabbitMQ the rabbitmq-server package (3.x, with Erlang).
"""

import argparse
import datetime
import glob
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.path.join(ROOT, "target", "rmqd-perf")
DEFAULT_OUTPUT = os.path.join(ROOT, "benches", "RESULTS.md")
RABBITMQ_SERVER = "rabbitmq-server"

# name -> (description, rmqd-perf arguments after the common flags). {connections},
# {backlog_messages}, {startup_runs} are filled from the command line.
CASES = {
    "throughput-auto": (
        "1 producer, 1 consumer, 1 queue, 16 B, auto-ack, publisher confirms (window 100)",
        "throughput --producers 1 --consumers 1 --queues 1 --size 16 --confirm 100",
    ),
    "throughput-manual": (
        "1 producer, 1 consumer, 1 queue, 16 B, manual ack (prefetch 100), confirms (window 100)",
        "throughput --producers 1 --consumers 1 --queues 1 --size 16 --confirm 100 "
        "--manual-ack --prefetch 100",
    ),
    "persistent-16b-1p": (
        "1 producer, 1 consumer, 1 durable queue, 16 B persistent messages, "
        "confirms (window 100), manual ack (prefetch 100): both brokers fsync before confirming",
        "throughput --producers 1 --consumers 1 --queues 1 --size 16 --confirm 100 "
        "--manual-ack --prefetch 100 --persistent",
    ),
    "persistent-16b-8p": (
        "8 producers, 1 consumer, 1 durable queue, 16 B persistent messages, "
        "confirms (window 100), manual ack (prefetch 100): both brokers fsync before confirming",
        "throughput --producers 8 --consumers 1 --queues 1 --size 16 --confirm 100 "
        "--manual-ack --prefetch 100 --persistent",
    ),
    "persistent-1k-1p": (
        "1 producer, 1 consumer, 1 durable queue, 1 KiB persistent messages, "
        "confirms (window 100), manual ack (prefetch 100): both brokers fsync before confirming",
        "throughput --producers 1 --consumers 1 --queues 1 --size 1024 --confirm 100 "
        "--manual-ack --prefetch 100 --persistent",
    ),
    "persistent-1k-8p": (
        "8 producers, 1 consumer, 1 durable queue, 1 KiB persistent messages, "
        "confirms (window 100), manual ack (prefetch 100): both brokers fsync before confirming",
        "throughput --producers 8 --consumers 1 --queues 1 --size 1024 --confirm 100 "
        "--manual-ack --prefetch 100 --persistent",
    ),
    "fanout": (
        "1 producer → fanout exchange → 10 queues, one consumer each, 16 B, auto-ack, confirms",
        "fanout --queues 10 --producers 1 --size 16 --confirm 100",
    ),
    "topic-10": (
        "topic exchange, 10 random bindings over 10 queues, random keys, 16 B, confirms",
        "topic --bindings 10 --queues 10 --size 16 --confirm 100",
    ),
    "topic-1000": (
        "topic exchange, 1,000 random bindings over 10 queues, random keys, 16 B, confirms",
        "topic --bindings 1000 --queues 10 --size 16 --confirm 100",
    ),
    "topic-100000": (
        "topic exchange, 100,000 random bindings over 10 queues, random keys, 16 B, confirms",
        "topic --bindings 100000 --queues 10 --size 16 --confirm 100",
    ),
    "rpc": (
        "1 caller, 1 server: request via a topic exchange, reply to an exclusive queue",
        "rpc --callers 1 --servers 1 --size 16",
    ),
    "connections": (
        "{connections} idle connections, one channel each, heartbeat 10 s",
        "connections --connections {connections} --heartbeat 10 --concurrency 50",
    ),
    "backlog": (
        "{backlog_messages} × 128 B into one queue with no consumer (confirms, window 1000), "
        "then drained by one auto-ack consumer",
        "backlog --messages {backlog_messages} --size 128 --confirm 1000",
    ),
    "startup": (
        "spawn → first connection.open-ok, median of {startup_runs} spawns",
        None,  # built per broker
    ),
}
DEFAULT_CASES = [
    "throughput-auto",
    "throughput-manual",
    "persistent-16b-1p",
    "persistent-16b-8p",
    "persistent-1k-1p",
    "persistent-1k-8p",
    "fanout",
    "topic-10",
    "topic-1000",
    "topic-100000",
    "rpc",
    "connections",
    "backlog",
    "startup",
]

# What RESULTS.md shows per scenario: (result key, label, unit, decimals, better: "low"/"high").
COMMON_FLOW = [
    ("publish_rate", "publish rate", "msg/s", 0, "high"),
    ("deliver_rate", "delivery rate", "msg/s", 0, "high"),
    ("latency_p50_us", "latency p50", "µs", 0, "low"),
    ("latency_p99_us", "latency p99", "µs", 0, "low"),
    ("broker_cpu_us_per_msg", "broker CPU per message published", "µs", 2, "low"),
    ("broker_cpu_cores", "broker CPU use", "cores", 2, "low"),
    ("broker_cpu_sys_share", "… of which in the kernel", "share", 0, None),
    ("client_cpu_cores", "load generator CPU use", "cores", 2, None),
    ("broker_rss_end_bytes", "broker RSS at end", "bytes", 0, "low"),
]
SHOWN = {
    "throughput": COMMON_FLOW,
    "fanout": COMMON_FLOW
    + [("broker_cpu_us_per_delivery", "broker CPU per delivery", "µs", 2, "low")],
    "topic": [
        ("bind_rate", "bind rate (8 channels)", "bindings/s", 0, "high"),
        ("broker_cpu_us_per_bind", "broker CPU per binding", "µs", 1, "low"),
        ("broker_rss_per_binding_bytes", "broker RSS per binding", "bytes", 0, "low"),
    ]
    + COMMON_FLOW
    + [
        ("deliveries_per_publish", "deliveries per publish", "", 2, None),
        ("broker_cpu_us_per_delivery", "broker CPU per delivery", "µs", 2, "low"),
    ],
    "rpc": [
        ("round_trip_rate", "round trips", "rt/s", 0, "high"),
        ("latency_p50_us", "round trip p50", "µs", 0, "low"),
        ("latency_p99_us", "round trip p99", "µs", 0, "low"),
        ("broker_cpu_us_per_round_trip", "broker CPU per round trip", "µs", 1, "low"),
        ("broker_cpu_us_per_msg", "broker CPU per message", "µs", 1, "low"),
        ("broker_cpu_cores", "broker CPU use", "cores", 2, "low"),
        ("broker_cpu_sys_share", "… of which in the kernel", "share", 0, None),
        ("client_cpu_cores", "load generator CPU use", "cores", 2, None),
        ("broker_rss_end_bytes", "broker RSS at end", "bytes", 0, "low"),
    ],
    "connections": [
        ("opened", "connections opened", "", 0, "high"),
        ("alive_at_end", "still open at the end", "", 0, "high"),
        ("open_rate", "open rate (50 at once)", "conn/s", 0, "high"),
        ("broker_cpu_us_per_connection_open", "broker CPU per connection open", "µs", 0, "low"),
        ("broker_rss_per_connection_bytes", "broker RSS per connection", "bytes", 0, "low"),
        ("broker_rss_open_bytes", "broker RSS with all open", "bytes", 0, "low"),
        ("broker_idle_cpu_cores", "broker CPU while idle (heartbeats)", "cores", 3, "low"),
        ("broker_rss_after_close_bytes", "broker RSS after closing all", "bytes", 0, "low"),
    ],
    "backlog": [
        ("queued", "messages queued", "", 0, None),
        ("fill_rate", "fill rate", "msg/s", 0, "high"),
        ("broker_cpu_us_per_msg_fill", "broker CPU per message (fill)", "µs", 2, "low"),
        ("broker_rss_per_msg_bytes", "broker RSS per queued message", "bytes", 0, "low"),
        ("broker_rss_full_bytes", "broker RSS with the queue full", "bytes", 0, "low"),
        ("drain_rate", "drain rate", "msg/s", 0, "high"),
        ("broker_cpu_us_per_msg_drain", "broker CPU per message (drain)", "µs", 2, "low"),
        ("broker_rss_drained_bytes", "broker RSS after the drain", "bytes", 0, "low"),
    ],
    "startup": [
        ("startup_median_ms", "spawn → open-ok, median", "ms", 1, "low"),
        ("startup_min_ms", "min", "ms", 1, "low"),
        ("startup_max_ms", "max", "ms", 1, "low"),
        ("broker_cpu_ms_to_open_ok", "broker CPU until open-ok (10 ms ticks)", "ms", 0, "low"),
        ("broker_rss_at_open_ok_bytes", "broker RSS at open-ok", "bytes", 0, "low"),
    ],
}


def log(msg):
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


def capture(cmd, timeout=60):
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False
        )
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.02)
    return False


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def stop_process(proc, timeout=30):
    """SIGTERM to the process group we created for `proc`, SIGKILL after `timeout`."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


# --------------------------------------------------------------------------------------------
# Brokers


class Rmqd:
    name = "rmqd"

    def __init__(self, binary):
        self.binary = binary
        self.proc = None
        self.port = None
        self.log_path = None
        self.crashes = []

    def start(self, case):
        self.port = free_port()
        self.log_path = os.path.join(WORK, f"rmqd-{case}.log")
        logf = open(self.log_path, "w")
        # A fresh data dir per case, like the private RabbitMQ node's fresh database.
        data_dir = os.path.join(WORK, f"rmqd-data-{case}")
        shutil.rmtree(data_dir, ignore_errors=True)
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
               "--log-level", "warn", "--data-dir", data_dir]
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if not wait_for_port(self.port, self.proc, 10):
            raise RuntimeError(f"rmqd did not listen on {self.port}; see {self.log_path}")

    @property
    def uri(self):
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2f"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stop(self, case):
        code = self.proc.poll()
        if code is not None:
            with open(self.log_path) as f:
                tail = f.read()[-2000:]
            self.crashes.append(f"{case}: rmqd exited with status {code} during the case: {tail}")
        else:
            stop_process(self.proc)
        self.proc = None

    def startup_cmd(self):
        data_dir = shlex.quote(os.path.join(WORK, "rmqd-data-startup"))
        return (f"exec {shlex.quote(self.binary)} --port {{port}} "
                f"--bind 127.0.0.1 --log-level warn --data-dir {data_dir}")


class PrivateRabbit:
    """A RabbitMQ node of our own: free ports, temporary directories, no plugins."""

    name = "RabbitMQ"

    def __init__(self, server):
        self.server = server
        self.proc = None
        self.dir = None
        self.port = None

    @staticmethod
    def env_prefix(base, nodename, port="{port}", dist="{port2}"):
        plugins = os.path.join(base, "enabled_plugins")
        return (
            f"RABBITMQ_NODENAME={nodename} RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 "
            f"RABBITMQ_NODE_PORT={port} RABBITMQ_DIST_PORT={dist} "
            f"RABBITMQ_MNESIA_BASE={base}/mnesia RABBITMQ_LOG_BASE={base}/log "
            f"RABBITMQ_ENABLED_PLUGINS_FILE={plugins} "
            f"RABBITMQ_CONFIG_FILE={base}/rabbitmq RABBITMQ_ADVANCED_CONFIG_FILE={base}/advanced "
            f"RABBITMQ_PID_FILE={base}/pid RUNNING_UNDER_SYSTEMD=true"
        )

    @staticmethod
    def prepare(base):
        os.makedirs(base, exist_ok=True)
        with open(os.path.join(base, "enabled_plugins"), "w") as f:
            f.write("[].\n")

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="rmqd-perf-rabbit-")
        self.prepare(self.dir)
        self.port = free_port()
        dist = free_port()
        node = f"rmqdperf{self.port}@localhost"
        cmd = f"exec env {self.env_prefix(self.dir, node, self.port, dist)} {self.server}"
        log(f"starting a private RabbitMQ node: {node} on port {self.port}")
        self.proc = subprocess.Popen(
            ["sh", "-c", cmd],
            stdout=open(os.path.join(self.dir, "stdout.log"), "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not wait_for_port(self.port, self.proc, 120):
            raise RuntimeError(f"RabbitMQ did not start; see {self.dir}/stdout.log and log/")
        time.sleep(1)

    @property
    def uri(self):
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2f"

    @property
    def pid(self):
        # RUNNING_UNDER_SYSTEMD makes rabbitmq-server exec erl, which execs beam.smp.
        return self.proc.pid if self.proc else None

    def stop(self):
        if self.proc:
            stop_process(self.proc, timeout=60)
            self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def startup_cmd(self):
        base = os.path.join(tempfile.gettempdir(), "rmqd-perf-rabbit-startup-{port}")
        return (
            f"mkdir -p {base} && echo '[].' > {base}/enabled_plugins && "
            f"exec env {self.env_prefix(base, 'rmqdperfstart{port}@localhost')} {self.server}"
        )


class SystemRabbit:
    """The node on --rabbitmq-uri (5672), installed and started if needed."""

    name = "RabbitMQ"

    def __init__(self, server, uri):
        self.server = server
        self.uri = uri
        self.pid = None

    def start(self):
        pid = capture(["rabbitmqctl", "eval", "os:getpid()."])
        if pid is None:
            log("RabbitMQ is not running: starting it with `rabbitmq-server -detached`")
            run([self.server, "-detached"])
            run(["rabbitmqctl", "await_startup", "--timeout", "120"])
            pid = capture(["rabbitmqctl", "eval", "os:getpid()."])
        if pid is None:
            raise RuntimeError("cannot find RabbitMQ's pid with `rabbitmqctl eval 'os:getpid().'`")
        self.pid = int(pid.strip().strip('"'))
        log(f"using the running RabbitMQ, beam.smp pid {self.pid}")

    def stop(self):
        pass

    def startup_cmd(self):
        return PrivateRabbit(self.server).startup_cmd()


def find_rabbitmq_server():
    for path in ("/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/sbin/rabbitmq-server"):
        if os.path.exists(path):
            return path
    return shutil.which(RABBITMQ_SERVER)


def ensure_rabbitmq_installed():
    server = find_rabbitmq_server()
    if server:
        return server
    log("rabbitmq-server is not installed: installing it with apt-get")
    run(["apt-get", "update"])
    run(["apt-get", "install", "-y", "rabbitmq-server"])
    server = find_rabbitmq_server()
    if not server:
        raise RuntimeError("rabbitmq-server is still not found after apt-get install")
    return server


# --------------------------------------------------------------------------------------------
# Running cases


def perf_command(perf, uri, pid, label, duration, case, opts, startup_cmd):
    if case == "startup":
        # Each spawn gets its own port; the URI only lends its credentials.
        uri = "amqp://guest:guest@127.0.0.1:5672/%2f"
        runs = opts.startup_runs if label == "rmqd" else opts.rabbitmq_startup_runs
        args = f"startup --runs {runs} --cmd {shlex.quote(startup_cmd)}"
    else:
        args = CASES[case][1].format(connections=opts.connections,
                                     backlog_messages=opts.backlog_messages)
    common = f"--uri {uri} --duration {duration} --warmup {opts.warmup} --label {label}"
    if pid is not None and case != "startup":
        common += f" --broker-pid {pid}"
    return f"{shlex.quote(perf)} {common} {args}"


def run_perf(cmdline, case, label, timeout):
    log(f"{case} / {label}: {cmdline}")
    started = time.time()
    try:
        out = subprocess.run(["sh", "-c", cmdline], capture_output=True, text=True,
                             timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s"
    sys.stderr.write(out.stdout)
    if out.stderr:
        sys.stderr.write(out.stderr)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode != 0 or not lines:
        err = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"exit {out.returncode}: {err}"
    result = json.loads(lines[-1])
    result["wall_s"] = round(time.time() - started, 1)
    return result, None


def fmt(value, unit, decimals):
    if value is None:
        return "n/a"
    if unit == "share":
        return f"{float(value) * 100:.0f} %"
    if unit == "bytes":
        v = float(value)
        for u in ("B", "KiB", "MiB", "GiB"):
            if abs(v) < 1024 or u == "GiB":
                return f"{v:.0f} {u}" if u == "B" else f"{v:.1f} {u}"
            v /= 1024
    if isinstance(value, (int, float)):
        text = f"{value:,.{decimals}f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def ratio(a, b, better):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not better:
        return ""
    if a == 0 or b == 0:
        return ""
    # How many times better rmqd is (>1 = rmqd better).
    x = b / a if better == "low" else a / b
    if x >= 10:
        return f"{x:,.0f}×"
    return f"{x:.1f}×" if x >= 1 else f"{x:.2f}×"


def machine_info():
    info = {"nproc": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            models = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
        info["cpu"] = models[0] if models else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(l for l in f if l.startswith("MemTotal")).split()[1])
        info["ram"] = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        info["ram"] = "?"
    info["kernel"] = platform.release()
    info["os"] = capture(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]) or "?"
    info["rustc"] = capture(["rustc", "--version"]) or "?"
    commit = capture(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]) or "?"
    dirty = capture(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
    info["commit"] = commit + (" (with uncommitted changes)" if dirty else "")
    info["ulimit_n"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return info


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def write_results(path, opts, machine, runs, started, finished, load_before, load_after,
                  invocation, crashes, rabbit_desc):
    brokers = ["rmqd"] + (["RabbitMQ"] if opts.with_rabbitmq else [])
    out = []
    w = out.append
    w("# rmqd-perf results")
    w("")
    w("Generated by `benches/scripts/compare.py`; regenerate with the command below. Both brokers "
      "ran on the same machine in the same run, driven by the same load generator "
      "(`rmqd-perf`, amqprs 2.1 client). Numbers from one short run on a shared machine: "
      "compare the columns, not the absolute values, and re-run before quoting.")
    w("")
    w(f"- **Date**: {started:%Y-%m-%d %H:%M} – {finished:%H:%M} UTC")
    w(f"- **Command**: `{invocation}`")
    w(f"- **Machine**: {machine['nproc']} CPUs ({machine['cpu']}), {machine['ram']} RAM, "
      f"{machine['os']}, Linux {machine['kernel']}, open-file limit {machine['ulimit_n']}")
    w(f"- **Load average** before / after: {load_before} / {load_after} (the load generator and "
      f"the broker share these CPUs; other work may have run too)")
    w(f"- **rmqd**: commit {machine['commit']}, release build, {machine['rustc']}, started fresh "
      "for each case with `--bind 127.0.0.1 --log-level warn`")
    if opts.with_rabbitmq:
        w(f"- **RabbitMQ**: {rabbit_desc}")
    w(f"- **Window**: {opts.warmup} s warm-up, then {opts.duration} s measured, per case "
      "(backlog and startup run to completion)")
    w("")
    w("How to read it: *broker CPU* is the broker process's utime+stime (all threads, "
      "`/proc/PID/stat`, 10 ms ticks) over the measured window divided by the work done; *RSS* is "
      "`VmRSS` from `/proc/PID/status`. Rates are what one load generator process on the same "
      "CPUs achieved, so they are capped by the client as much as by the broker (see *load "
      "generator CPU use*). Latency is end to end, from the timestamp written into each body "
      "before publishing to its delivery to the consumer. The last column says how many times "
      "better rmqd's figure is (below 1× means worse).")
    w("")
    for case, per_broker in runs:
        desc = CASES[case][0].format(
            connections=f"{opts.connections:,}", backlog_messages=f"{opts.backlog_messages:,}",
            startup_runs=opts.startup_runs)
        w(f"## {case}")
        w("")
        if case == "startup" and opts.with_rabbitmq:
            desc += (f" (RabbitMQ: {opts.rabbitmq_startup_runs} spawns of a fresh node, no "
                     "plugins, empty database)")
        w(desc + ".")
        w("")
        scenario = next((r["scenario"] for r, *_ in per_broker.values() if r), None)
        rows = SHOWN.get(scenario, [])
        header = "| | " + " | ".join(brokers) + (" | rmqd vs RabbitMQ |" if len(brokers) > 1 else " |")
        w(header)
        w("|---" * (len(brokers) + 1 + (1 if len(brokers) > 1 else 0)) + "|")
        for key, label, unit, dec, better in rows:
            vals = [(per_broker.get(b, (None, None))[0] or {}).get("results", {}).get(key)
                    for b in brokers]
            cells = [fmt(v, unit, dec) for v in vals]
            line = f"| {label} | " + " | ".join(cells)
            if len(brokers) > 1:
                line += f" | {ratio(vals[0], vals[1], better)}"
            w(line + " |")
        for b in brokers:
            r, err, _ = per_broker.get(b, (None, "not run", None))
            if err:
                w("")
                w(f"**{b} failed**: {err}")
            elif r.get("incidents"):
                w("")
                w(f"{b}: {r['incidents']} incident(s), first: {r.get('first_incident')}")
            for note in (r or {}).get("notes", []):
                w("")
                w(f"{b}: {note}")
        w("")
    if crashes:
        w("## rmqd exits during the run")
        w("")
        for c in crashes:
            w(f"- {c}")
        w("")
    w("## Commands")
    w("")
    w("Every load generator run, as executed (ports and pids were chosen by the script):")
    w("")
    w("```sh")
    for case, per_broker in runs:
        for b in brokers:
            cmd = per_broker.get(b, (None, None, None))[2]
            if cmd:
                w(cmd.replace(ROOT + "/", ""))
    w("```")
    w("")
    with open(path, "w") as f:
        f.write("\n".join(out))
    log(f"wrote {path}")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--with-rabbitmq", action="store_true",
                   help="also run every case against RabbitMQ (installed and started if needed)")
    p.add_argument("--rabbitmq", choices=["private", "system"], default="private",
                   help="private: start our own node (default); system: use --rabbitmq-uri")
    p.add_argument("--rabbitmq-uri", default="amqp://guest:guest@127.0.0.1:5672/%2f")
    p.add_argument("--scenarios", default=",".join(DEFAULT_CASES),
                   help=f"comma-separated cases, from: {', '.join(CASES)}")
    p.add_argument("--duration", type=float, default=10, help="measured seconds per case")
    p.add_argument("--warmup", type=float, default=1, help="seconds of load before measuring")
    p.add_argument("--connections", type=int, default=10_000)
    p.add_argument("--backlog-messages", type=int, default=1_000_000)
    p.add_argument("--startup-runs", type=int, default=20)
    p.add_argument("--rabbitmq-startup-runs", type=int, default=3)
    p.add_argument("--case-timeout", type=float, default=900, help="seconds per rmqd-perf run")
    p.add_argument("--output", default=DEFAULT_OUTPUT)
    p.add_argument("--no-build", action="store_true", help="use the binaries already built")
    opts = p.parse_args()

    cases = [c.strip() for c in opts.scenarios.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        p.error(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")

    os.makedirs(WORK, exist_ok=True)
    limit = raise_fd_limit()
    if "connections" in cases and opts.connections + 100 > limit:
        fallback = max(100, limit - 200)
        log(f"open-file limit {limit} is too low for {opts.connections} connections: "
            f"using {fallback}")
        opts.connections = fallback

    if not opts.no_build:
        log("building rmqd and rmqd-perf (release)")
        run(["cargo", "build", "--release", "-p", "rmqd", "-p", "rmqd-benches",
             "--bin", "rmqd", "--bin", "rmqd-perf"], cwd=ROOT)
    # Private copies, so that a rebuild by someone else during the run changes nothing.
    binaries = {}
    for name in ("rmqd", "rmqd-perf"):
        src = os.path.join(ROOT, "target", "release", name)
        dst = os.path.join(WORK, name)
        shutil.copy2(src, dst)
        binaries[name] = dst
    perf = binaries["rmqd-perf"]
    rmqd = Rmqd(binaries["rmqd"])

    rabbit = None
    rabbit_desc = ""
    rabbit_version = "?"
    if opts.with_rabbitmq:
        server = ensure_rabbitmq_installed()
        if opts.rabbitmq == "private":
            rabbit = PrivateRabbit(server)
            rabbit_desc = ("a private node started by this script for each case "
                           "(`rabbitmq-server` with temporary mnesia/log directories, no "
                           f"plugins, default settings, open-file limit {limit}), like rmqd")
        else:
            rabbit = SystemRabbit(server, opts.rabbitmq_uri)
            rabbit_desc = f"the node already running on {opts.rabbitmq_uri}, default settings"

    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = loadavg()
    machine = machine_info()
    invocation = "python3 benches/scripts/compare.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    runs = []
    try:
        if isinstance(rabbit, SystemRabbit):
            rabbit.start()
        for case in cases:
            per_broker = {}
            rmqd.start(case)
            cmd = perf_command(perf, rmqd.uri, rmqd.pid, "rmqd", opts.duration, case, opts,
                               rmqd.startup_cmd())
            r, err = run_perf(cmd, case, "rmqd", opts.case_timeout)
            rmqd.stop(case)
            per_broker["rmqd"] = (r, err, cmd)
            if rabbit:
                # A private node is fresh for each case too (startup spawns its own).
                private = isinstance(rabbit, PrivateRabbit) and case != "startup"
                if private:
                    rabbit.start()
                cmd = perf_command(perf, rabbit.uri, rabbit.pid, "rabbitmq", opts.duration,
                                   case, opts, rabbit.startup_cmd())
                r, err = run_perf(cmd, case, "rabbitmq", opts.case_timeout)
                if private:
                    rabbit.stop()
                per_broker["RabbitMQ"] = (r, err, cmd)
                if r and r["broker"]["version"]:
                    rabbit_version = r["broker"]["version"]
            runs.append((case, per_broker))
            if case == "startup":
                for d in glob.glob(os.path.join(tempfile.gettempdir(), "rmqd-perf-rabbit-startup-*")):
                    shutil.rmtree(d, ignore_errors=True)
            with open(os.path.join(WORK, "results.jsonl"), "a") as f:
                for b, (r, err, cmd) in per_broker.items():
                    f.write(json.dumps({"case": case, "broker": b, "result": r, "error": err,
                                        "cmd": cmd}) + "\n")
    finally:
        if rmqd.proc:
            stop_process(rmqd.proc)
        if rabbit:
            rabbit.stop()
        # Whatever ran is written, even if a later case failed.
        if runs:
            finished = datetime.datetime.now(datetime.timezone.utc)
            write_results(opts.output, opts, machine, runs, started, finished, load_before,
                          loadavg(), invocation, rmqd.crashes,
                          f"{rabbit_version}, {rabbit_desc}")


if __name__ == "__main__":
    main()
