#!/usr/bin/env python3
"""Sanity check for the corpus, independent of the Rust codec (stdlib only).

    check.py [FILE.bin ...]      (default: every *.bin next to this script)

For each file: *.client.bin must start with b"AMQP\\x00\\x00\\x09\\x01"; the
rest (and all of *.server.bin) must split into whole frames
(type u8, channel u16, size u32, payload, 0xCE) with nothing left over, and
on each channel every content header must be followed by body frames that
add up to exactly its body-size.  Prints per-file frame counts; exits 1 on
the first malformed file.
"""

from __future__ import annotations

import collections
import pathlib
import struct
import sys

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = 0xCE
KIND = {1: "method", 2: "header", 3: "body", 8: "heartbeat"}


def frames(data: bytes, offset: int):
    while offset < len(data):
        if len(data) - offset < 7:
            raise ValueError(f"truncated frame header at offset {offset}")
        ftype, channel, size = struct.unpack_from(">BHI", data, offset)
        end = offset + 7 + size
        if end >= len(data):
            raise ValueError(f"truncated frame payload at offset {offset} (size {size})")
        if data[end] != FRAME_END:
            raise ValueError(f"bad frame-end 0x{data[end]:02x} at offset {end}")
        yield offset, ftype, channel, data[offset + 7 : end]
        offset = end + 1


def check(path: pathlib.Path) -> collections.Counter:
    data = path.read_bytes()
    offset = 0
    if path.name.endswith(".client.bin"):
        if not data.startswith(PROTOCOL_HEADER):
            raise ValueError(f"does not start with protocol header: {data[:8]!r}")
        offset = len(PROTOCOL_HEADER)
    counts: collections.Counter = collections.Counter()
    # channel -> bytes of body still expected after a content header
    pending: dict[int, int] = {}
    for off, ftype, channel, payload in frames(data, offset):
        counts[KIND.get(ftype, f"type{ftype}")] += 1
        if ftype == 1:
            if pending.get(channel):
                raise ValueError(f"method frame at {off} interrupts content on channel {channel}")
        elif ftype == 2:
            if pending.get(channel):
                raise ValueError(f"header frame at {off} interrupts content on channel {channel}")
            _class_id, _weight, body_size = struct.unpack_from(">HHQ", payload)
            pending[channel] = body_size
        elif ftype == 3:
            left = pending.get(channel, 0)
            if len(payload) > left:
                raise ValueError(f"body frame at {off} overruns content on channel {channel}")
            pending[channel] = left - len(payload)
        elif ftype == 8:
            if channel != 0 or payload:
                raise ValueError(f"malformed heartbeat at {off}")
        else:
            raise ValueError(f"unknown frame type {ftype} at {off}")
    if any(pending.values()):
        raise ValueError(f"stream ends mid-content: {pending}")
    return counts


def main() -> int:
    paths = [pathlib.Path(p) for p in sys.argv[1:]] or sorted(pathlib.Path(__file__).parent.glob("*.bin"))
    if not paths:
        print("no .bin files found", file=sys.stderr)
        return 1
    for p in paths:
        try:
            c = check(p)
        except (ValueError, struct.error, IndexError) as e:
            print(f"FAIL {p.name}: {e}")
            return 1
        detail = " ".join(f"{k}={c[k]}" for k in ("method", "header", "body", "heartbeat") if c[k])
        print(f"ok   {p.name:<40} {p.stat().st_size:>8} bytes  frames={sum(c.values()):<4} {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
