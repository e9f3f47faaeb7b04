#!/usr/bin/env python3
"""Recording TCP proxy for building the AMQP wire corpus (stdlib only).

Listens on 127.0.0.1:LISTEN, forwards each accepted connection to
127.0.0.1:UPSTREAM, and writes the exact bytes of each direction to
DIR/NAME.client.bin (client->server) and DIR/NAME.server.bin
(server->client).  One connection is captured per --name given, in accept
order; the proxy exits once all of them have closed.

    capture.py --listen 5673 --upstream 5672 --out DIR --name NAME [--name NAME2 ...]
              [-- COMMAND ARGS...]

With a trailing command the proxy starts it only after the listening socket
is bound (so the client can never race the proxy), waits for it, and exits
with its status.  Without one it waits for the connections to arrive.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

CHUNK = 65536


def pump(src: socket.socket, dst: socket.socket, path: str) -> None:
    # The file records what the sender wrote, so it is written before (and
    # regardless of) forwarding.
    with open(path, "wb") as out:
        while True:
            try:
                data = src.recv(CHUNK)
            except OSError:  # a reset ends the stream like an orderly EOF
                data = b""
            if not data:
                break
            out.write(data)
            try:
                dst.sendall(data)
            except OSError:
                # The peer is gone; keep draining src so the recording
                # still holds everything the sender actually put on the wire.
                pass
    # Half-close rather than close: the other direction may still carry
    # connection.close-ok after this side has finished.
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def relay(client: socket.socket, upstream_port: int, out_dir: str, name: str) -> None:
    server = socket.create_connection(("127.0.0.1", upstream_port))
    for s in (client, server):
        # Nagle would only add latency; it cannot change the byte stream.
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threads = [
        threading.Thread(target=pump, args=(client, server, os.path.join(out_dir, f"{name}.client.bin"))),
        threading.Thread(target=pump, args=(server, client, os.path.join(out_dir, f"{name}.server.bin"))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    server.close()


def accept(lsock: socket.socket, timeout: float, proc: subprocess.Popen | None) -> socket.socket | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Sample the driver's liveness before accepting: a connection it made
        # just before exiting is still in the backlog and must not be lost.
        exited = proc is not None and proc.poll() is not None
        try:
            client, _ = lsock.accept()
            client.settimeout(None)
            return client
        except socket.timeout:
            if exited:
                return None
    return None


def main() -> int:
    argv = sys.argv[1:]
    command: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1 :]

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", type=int, default=5673)
    ap.add_argument("--upstream", type=int, default=5672)
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", action="append", required=True, help="repeat once per connection to capture")
    ap.add_argument("--accept-timeout", type=float, default=600.0, help="seconds to wait for each connection")
    args = ap.parse_args(argv)

    os.makedirs(args.out, exist_ok=True)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.listen))
    lsock.listen(8)
    # Short accept timeout so a driver that dies before connecting is noticed
    # promptly instead of after --accept-timeout.
    lsock.settimeout(0.2)
    print(f"capture: listening on 127.0.0.1:{args.listen} -> 127.0.0.1:{args.upstream}", file=sys.stderr, flush=True)

    proc = subprocess.Popen(command) if command else None

    workers = []
    status = 0
    try:
        for name in args.name:
            client = accept(lsock, args.accept_timeout, proc)
            if client is None:
                print(f"capture: no connection for {name!r}", file=sys.stderr)
                status = 2
                break
            peer = client.getpeername()
            print(f"capture: {name} <- {peer[0]}:{peer[1]}", file=sys.stderr, flush=True)
            t = threading.Thread(target=relay, args=(client, args.upstream, args.out, name))
            t.start()
            workers.append(t)
    finally:
        lsock.close()
        for t in workers:
            t.join()
        if proc is not None:
            rc = proc.wait()
            status = status or rc
    for name in args.name[: len(workers)]:
        sizes = [os.path.getsize(os.path.join(args.out, f"{name}.{d}.bin")) for d in ("client", "server")]
        print(f"capture: {name}: client {sizes[0]} bytes, server {sizes[1]} bytes", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
