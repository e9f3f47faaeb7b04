"""A service process for the tests that kill one: an RPC server or a notification listener.

  python worker.py notify URL CONTROL_EXCHANGE NAME [--prefetch N]
  python worker.py rpc URL CONTROL_EXCHANGE NAME TOPIC [--prefetch N] [--ttl SECONDS]

Prints one JSON object per line: {"event": "ready"} once its queues are declared, then
{"event": "got", "id": ..., "redelivered": bool} when an endpoint starts on a message and
{"event": "done", "id": ...} when it returns (the notification is acked right after). A payload
or call argument {"sleep": S} keeps the endpoint busy for S seconds. Runs until killed.
"""

import argparse
import json
import signal
import sys
import threading
import time

import minioslo


def emit(**event):
    print(json.dumps(event), flush=True)


class NotifyEndpoint:
    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        emit(event='got', id=payload.get('id'), redelivered=metadata['redelivered'])
        time.sleep(payload.get('sleep', 0))
        emit(event='done', id=payload.get('id'))


class RpcEndpoint:
    def __init__(self, name):
        self.name = name

    def work(self, ctxt, id=None, sleep=0):
        emit(event='got', id=id, redelivered=False)
        time.sleep(sleep)
        emit(event='done', id=id)
        return self.name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('kind', choices=['notify', 'rpc'])
    ap.add_argument('url')
    ap.add_argument('exchange')
    ap.add_argument('name')
    ap.add_argument('topic', nargs='?', default='notifications')
    ap.add_argument('--prefetch', type=int, default=0)
    ap.add_argument('--ttl', type=int, default=1800)
    args = ap.parse_args()
    conf = minioslo.Config(control_exchange=args.exchange,
                           rabbit_qos_prefetch_count=args.prefetch,
                           rabbit_transient_queues_ttl=args.ttl)
    transport = minioslo.Transport(args.url, conf)
    if args.kind == 'notify':
        server = minioslo.NotificationListener(
            transport, [minioslo.Target(topic=args.topic)], [NotifyEndpoint()])
    else:
        server = minioslo.RPCServer(
            transport, minioslo.Target(topic=args.topic, server=args.name),
            [RpcEndpoint(args.name)])
    server.start()
    emit(event='ready', fanout_queue=getattr(server, 'fanout_queue', None))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop()
    transport.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
