"""Helpers for the tutorial tests: tutorial programs as subprocesses, and a pika connection of
the test's own to look at the broker from outside."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pika

HERE = Path(__file__).resolve().parent
CLIENTS = ('pika', 'kombu')

# How long to wait for something that should happen (a line of output, a process to end).
# Generous: a loaded CI machine may start Python slowly; passing runs never wait this long.
PATIENCE = 15.0
# How long to keep watching for messages that should NOT arrive, once the expected ones have.
QUIET = 0.5
# What a consumer prints once its basic.consume is acknowledged: messages reach it from then on.
READY = r' \[\*\] Waiting for .*| \[x\] Awaiting RPC requests'


def decode_body(properties, body):
    """A message body as its program meant it: kombu sends JSON by default, pika plain text."""
    if properties.content_type == 'application/json':
        return json.loads(body)
    return body.decode()


class Program:
    """One tutorial program running in a subprocess; its output collected line by line."""

    def __init__(self, client, name, args, env):
        self.name = f'{client}_tutorials/{name}.py {" ".join(args)}'.strip()
        self.lines = []
        self._cond = threading.Condition()
        self._eof = False
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / f'{client}_tutorials' / f'{name}.py'), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip('\n'))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def output(self):
        with self._cond:
            return '\n'.join(self.lines)

    def describe(self):
        return f'--- output of {self.name} (exit status {self.proc.poll()}) ---\n{self.output()}\n---'

    def matches(self, pattern):
        """The match objects of `pattern` (re.fullmatch) for every output line, in order."""
        regex = re.compile(pattern)
        with self._cond:
            found = [regex.fullmatch(line) for line in self.lines]
        return [m for m in found if m]

    def wait_for(self, pattern, count=1, timeout=PATIENCE):
        """Wait until `count` lines fully match `pattern`; returns their matches."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in (regex.fullmatch(line) for line in self.lines) if m]
                if len(found) >= count:
                    return found
                if self._eof:
                    raise AssertionError(
                        f'{self.name} ended after {len(found)} of {count} lines matching '
                        f'{pattern!r}\n{self.describe()}'
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f'{self.name}: {len(found)} of {count} lines matching {pattern!r} after '
                        f'{timeout}s\n{self.describe()}'
                    )
                self._cond.wait(left)

    def finish(self, timeout=PATIENCE):
        """Wait for the program to end by itself; it must succeed."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f'{self.name} did not finish within {timeout}s\n{self.describe()}')
        self._reader.join(PATIENCE)
        assert self.proc.returncode == 0, f'{self.name} failed\n{self.describe()}'
        return self

    def interrupt(self):
        """CTRL+C, as the tutorials tell the user to stop a consumer."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(PATIENCE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(PATIENCE)

    def kill(self):
        """The process dies without a word to the broker (SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(PATIENCE)


class Tutorials:
    """Starts the programs of one client library with this test's AMQP_URL and prefix."""

    def __init__(self, client, prefix, url):
        self.client = client
        self.prefix = prefix
        self.env = dict(
            os.environ,
            AMQP_URL=url,
            TUTORIAL_PREFIX=prefix,
            PYTHONUNBUFFERED='1',
            PYTHONDONTWRITEBYTECODE='1',
        )
        self.programs = []

    def start(self, name, *args):
        program = Program(self.client, name, [str(a) for a in args], self.env)
        self.programs.append(program)
        return program

    def run(self, name, *args):
        """Run a one-shot program (a producer) to completion."""
        return self.start(name, *args).finish()

    def run_all(self, commands):
        """Run several one-shot programs at once, e.g. [('emit_log_topic', 'kern.info', 'x')]."""
        programs = [self.start(name, *args) for name, *args in commands]
        for program in programs:
            program.finish()
        return programs

    def consumer(self, name, *args):
        """Start a long-running program and wait until it says it is consuming."""
        return self.consumers([(name, *args)])[0]

    def consumers(self, commands):
        """Start several consumers at once; returns them when all are ready."""
        programs = [self.start(name, *args) for name, *args in commands]
        for program in programs:
            program.wait_for(READY)
        return programs

    def stop_all(self):
        for program in self.programs:
            program.interrupt()

    def name(self, base):
        """A queue or exchange name as the programs spell it under this test's prefix."""
        return self.prefix + base

    def describe(self):
        return '\n'.join(p.describe() for p in self.programs)


class Broker:
    """A plain pika connection of the test's own, to look at the broker from outside."""

    def __init__(self, url):
        self.connection = pika.BlockingConnection(pika.URLParameters(url))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.connection.is_open:
            self.connection.close()

    def channel(self):
        return self.connection.channel()

    def close_code(self, action):
        """Run `action(channel)` on a fresh channel; the reply code the broker closed it with
        (406, 404, 405, ...), or None if it did not."""
        channel = self.channel()
        try:
            action(channel)
        except pika.exceptions.ChannelClosedByBroker as closed:
            return closed.reply_code
        channel.close()
        return None
