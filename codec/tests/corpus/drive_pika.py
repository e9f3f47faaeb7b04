#!/usr/bin/env python3
"""pika scenarios for the wire corpus; run each one through capture.py.

    drive_pika.py --port 5673 SCENARIO      (SCENARIO: see SCENARIOS below)

Each scenario opens exactly one connection (heartbeats off), so one capture
pair corresponds to one scenario, and ends with connection.close/close-ok.
Needs pika (version pinned in requirements.txt).
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import sys

import pika
import pika.exceptions

# Fixed values rather than now(): re-captures then differ only where the
# broker itself varies (generated names, tags), which keeps diffs readable.
FIXED_TS = 1_700_000_000
FIXED_DT = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)

# 300 KiB: with frame_max 131072 this needs three body frames each way.
LARGE_BODY = bytes((i * 7 + i // 251) & 0xFF for i in range(300 * 1024))

# Every value type pika can encode (it has no float encoder: floats raise
# UnsupportedAMQPFieldException, so none appear here).
#   str->S  bytes->x  bool->t  int fitting i32->I  else->l  Decimal->D
#   datetime->T  dict->F  list->A  None->V
RICH_TABLE = {
    "str": "hello",
    "utf8": "h\u00e9llo \u2713",
    "empty-str": "",
    "bytes": b"\x00\x01\xfe\xff",
    "true": True,
    "false": False,
    "i32": 2_147_483_647,
    "neg": -5,
    "i64": 2**40,
    "neg-i64": -(2**40),
    "decimal": decimal.Decimal("3.14"),
    "neg-decimal": decimal.Decimal("-0.005"),
    "when": FIXED_DT,
    "void": None,
    "empty-table": {},
    "empty-array": [],
    "nested": {"inner": {"deep": 1, "deeper": {"s": "x"}}, "arr": [1, "two", True]},
    "array": [1, 2**40, "s", b"\xff", False, None, decimal.Decimal("1.5"), FIXED_DT, [1, [2]], {"k": "v"}],
}


def connect(port: int, scenario: str, **overrides) -> pika.BlockingConnection:
    params = dict(
        host="127.0.0.1",
        port=port,
        credentials=pika.PlainCredentials("guest", "guest"),
        heartbeat=0,  # no heartbeat frames at unpredictable points
        client_properties={"connection_name": f"corpus-pika-{scenario}"},
        connection_attempts=1,
    )
    params.update(overrides)
    return pika.BlockingConnection(pika.ConnectionParameters(**params))


def all_properties(**kw) -> pika.BasicProperties:
    """All 14 basic properties set, so every property-flag bit is 1."""
    props = dict(
        content_type="text/plain",
        content_encoding="utf-8",
        headers=RICH_TABLE,
        delivery_mode=2,
        priority=5,
        correlation_id="corr-1",
        reply_to="corpus.reply",
        expiration="60000",
        message_id="msg-1",
        timestamp=FIXED_TS,
        type="corpus.type",
        user_id="guest",  # RabbitMQ rejects a user_id that is not the login user
        app_id="corpus-pika",
        cluster_id="corpus-cluster",
    )
    props.update(kw)
    return pika.BasicProperties(**props)


def scenario_declare(port: int) -> None:
    """Topology: exchange/queue declare, bind, unbind, purge, delete."""
    conn = connect(port, "declare")
    ch = conn.channel()

    ch.exchange_declare("corpus.fanout", "fanout")
    ch.exchange_declare("corpus.topic", "topic", durable=True, arguments={"alternate-exchange": "corpus.fanout"})
    ch.exchange_declare("corpus.headers", "headers", auto_delete=True, arguments=RICH_TABLE)
    ch.exchange_declare("corpus.internal", "direct", internal=True)
    ch.exchange_declare("corpus.topic", "topic", passive=True)
    ch.exchange_bind("corpus.headers", "corpus.topic", "a.#", arguments={"x-note": "e2e", "n": 1})
    ch.exchange_bind("corpus.internal", "corpus.fanout")

    ch.queue_declare(
        "corpus.args",
        arguments={
            "x-message-ttl": 60000,
            "x-expires": 600000,
            "x-max-length": 1000,
            "x-queue-mode": "lazy",
            **RICH_TABLE,
        },
    )
    ch.queue_declare("corpus.args", passive=True)
    ch.queue_declare("corpus.durable", durable=True)
    anon = ch.queue_declare("", exclusive=True).method.queue  # server-named amq.gen-*

    ch.queue_bind("corpus.args", "corpus.headers", arguments={"x-match": "all", "format": "pdf", "n": 42, "flag": True})
    ch.queue_bind("corpus.durable", "corpus.headers", arguments={"x-match": "any", "a": "1", "b": b"\x02"})
    ch.queue_bind(anon, "corpus.topic", "a.*.c")
    ch.queue_bind("corpus.durable", "corpus.fanout")

    # Goes topic -> (e2e) headers -> corpus.args, and fanout-less copies.
    ch.basic_publish("corpus.topic", "a.b.c", b"one", pika.BasicProperties(headers={"format": "pdf", "n": 42, "flag": True}))
    ch.basic_publish("", "corpus.durable", b"two")
    ch.basic_publish("", "corpus.durable", b"three")
    purged = ch.queue_purge("corpus.durable").method.message_count
    print(f"purged {purged} from corpus.durable", file=sys.stderr)

    ch.queue_unbind("corpus.args", "corpus.headers", arguments={"x-match": "all", "format": "pdf", "n": 42, "flag": True})
    ch.queue_unbind(anon, "corpus.topic", "a.*.c")
    ch.exchange_unbind("corpus.headers", "corpus.topic", "a.#", arguments={"x-note": "e2e", "n": 1})
    ch.exchange_unbind("corpus.internal", "corpus.fanout")

    ch.queue_delete("corpus.args")
    ch.queue_delete("corpus.durable", if_unused=True, if_empty=True)
    ch.queue_delete(anon)
    ch.exchange_delete("corpus.internal", if_unused=True)
    ch.exchange_delete("corpus.headers")
    ch.exchange_delete("corpus.topic")
    ch.exchange_delete("corpus.fanout")

    ch.close()
    conn.close()


def scenario_basic(port: int) -> None:
    """Publishing, properties, large bodies, get, consume, ack/nack/reject,
    recover, mandatory returns and dead-lettering (x-death from the broker)."""
    conn = connect(port, "basic")
    ch = conn.channel()
    returned = []
    ch.add_on_return_callback(lambda _ch, method, props, body: returned.append((method, body)))

    ch.exchange_declare("corpus.dlx", "fanout", auto_delete=True)
    ch.queue_declare("corpus.dead", exclusive=True)
    ch.queue_bind("corpus.dead", "corpus.dlx")
    ch.queue_declare("corpus.work", exclusive=True, arguments={"x-max-priority": 10, "x-dead-letter-exchange": "corpus.dlx"})
    ch.basic_qos(prefetch_count=5)

    ch.basic_publish("", "corpus.work", "hello, rabbit \u2713".encode(), all_properties())
    ch.basic_publish("", "corpus.work", b"")  # no properties: flags 0, no body frame
    ch.basic_publish("", "corpus.work", LARGE_BODY, pika.BasicProperties(content_type="application/octet-stream"))
    for n in range(4, 8):
        ch.basic_publish("", "corpus.work", f"m{n}".encode(), pika.BasicProperties(delivery_mode=1))
    ch.basic_publish("", "corpus.nowhere", b"returned", pika.BasicProperties(message_id="ret-1"), mandatory=True)

    method, props, body = ch.basic_get("corpus.work")  # get-ok carrying all 14 properties
    assert body.startswith(b"hello") and props.user_id == "guest", (method, props)
    ch.basic_ack(method.delivery_tag)

    state = {"held": None, "recover": False, "done": set()}

    def on_message(c, method, props, body):
        tag, again = method.delivery_tag, method.redelivered
        if body in (b"", LARGE_BODY, b"m7") or again:
            if body == b"m7":
                # multiple=True also settles the m6 delivery held below
                c.basic_ack(tag, multiple=True)
            else:
                c.basic_ack(tag)
            state["done"].add(body[:8])
        elif body == b"m4":
            c.basic_nack(tag, requeue=True)  # comes back with redelivered=1
        elif body == b"m5":
            c.basic_reject(tag, requeue=False)  # dead-lettered to corpus.dead
            state["done"].add(body)
        elif body == b"m6":
            state["held"] = tag
            state["done"].add(body)
        elif body == b"m8":
            state["recover"] = True  # basic.recover from the main loop, not the callback

    ctag = ch.basic_consume("corpus.work", on_message, consumer_tag="corpus-ctag", arguments={"x-priority": 3})
    want = {b"", LARGE_BODY[:8], b"m4", b"m5", b"m6", b"m7"}
    while not want <= state["done"]:
        conn.process_data_events(time_limit=0.2)
    ch.basic_publish("", "corpus.work", b"m8")
    while b"m8" not in state["done"]:
        conn.process_data_events(time_limit=0.2)
        if state["recover"]:
            state["recover"] = False
            ch.basic_recover(requeue=True)
    ch.basic_cancel(ctag)

    method, _, _ = ch.basic_get("corpus.work")
    assert method is None, method  # get-empty
    method, props, body = ch.basic_get("corpus.dead")
    assert body == b"m5" and "x-death" in props.headers, props
    ch.basic_ack(method.delivery_tag)
    conn.process_data_events(time_limit=0.2)
    assert returned and returned[0][0].reply_code == 312, returned

    # no-ack consumer: deliveries with no ack traffic back
    ch.basic_publish("", "corpus.dead", b"auto")
    got = []
    auto_tag = ch.basic_consume("corpus.dead", lambda c, m, p, b: got.append(b), auto_ack=True, exclusive=True)
    while not got:
        conn.process_data_events(time_limit=0.2)
    ch.basic_cancel(auto_tag)

    ch.close()
    conn.close()


def scenario_confirm(port: int) -> None:
    """Publisher confirms: basic.ack, basic.return+ack, and a broker basic.nack."""
    conn = connect(port, "confirm")
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare("corpus.confirm", exclusive=True)
    # reject-publish overflow is the one cheap way to make RabbitMQ nack.
    ch.queue_declare("corpus.full", exclusive=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})

    for i in range(3):
        ch.basic_publish("", "corpus.confirm", f"c{i}".encode(), all_properties(message_id=f"c{i}"))
    try:
        ch.basic_publish("", "corpus.nowhere", b"unroutable", mandatory=True)
        raise AssertionError("expected basic.return")
    except pika.exceptions.UnroutableError:
        pass
    ch.basic_publish("", "corpus.full", b"fits")
    try:
        ch.basic_publish("", "corpus.full", b"overflows")
        raise AssertionError("expected basic.nack")
    except pika.exceptions.NackError:
        pass
    # non-mandatory unroutable: silently dropped, still acked
    ch.basic_publish("", "corpus.nowhere", b"dropped")

    ch.close()
    conn.close()


def scenario_tx(port: int) -> None:
    """Transactions on a second channel while channel 1 stays plain."""
    conn = connect(port, "tx")
    plain = conn.channel()
    plain.queue_declare("corpus.tx", exclusive=True)
    tx = conn.channel()
    tx.tx_select()

    tx.basic_publish("", "corpus.tx", b"committed-1")
    tx.basic_publish("", "corpus.tx", b"committed-2", pika.BasicProperties(headers={"tx": True}))
    tx.tx_commit()
    tx.basic_publish("", "corpus.tx", b"rolled-back")
    tx.tx_rollback()

    method, _, body = tx.basic_get("corpus.tx")
    assert body == b"committed-1"
    tx.basic_ack(method.delivery_tag)
    # RabbitMQ's rollback forgets the ack but does not requeue: the delivery
    # stays outstanding on this channel and can be acked again.
    tx.tx_rollback()
    tx.basic_ack(method.delivery_tag)
    tx.tx_commit()
    method, _, body = plain.basic_get("corpus.tx")
    assert body == b"committed-2" and not method.redelivered, (method, body)
    plain.basic_ack(method.delivery_tag)
    assert plain.queue_declare("corpus.tx", passive=True).method.message_count == 0

    tx.close()
    plain.close()
    conn.close()


def scenario_channel_errors(port: int) -> None:
    """Broker-initiated channel.close (404, 406) answered with close-ok."""
    conn = connect(port, "channel-errors")

    ch = conn.channel()
    try:
        ch.queue_declare("corpus.does-not-exist", passive=True)
    except pika.exceptions.ChannelClosedByBroker as e:
        assert e.reply_code == 404, e

    ch = conn.channel()
    ch.queue_declare("corpus.eq", exclusive=True, arguments={"x-message-ttl": 1000})
    try:
        ch.queue_declare("corpus.eq", exclusive=True, arguments={"x-message-ttl": 2000})
    except pika.exceptions.ChannelClosedByBroker as e:
        assert e.reply_code == 406, e

    # Publishing is asynchronous, so the 404 arrives on the next round trip.
    ch = conn.channel()
    ch.basic_publish("corpus.no-such-exchange", "rk", b"lost")
    try:
        ch.queue_declare("", exclusive=True)
    except pika.exceptions.ChannelClosedByBroker as e:
        assert e.reply_code == 404, e

    ch = conn.channel()
    ch.basic_ack(99)  # unknown delivery tag: 406 PRECONDITION_FAILED
    try:
        ch.queue_declare("", exclusive=True)
    except pika.exceptions.ChannelClosedByBroker as e:
        assert e.reply_code == 406, e

    conn.close()


def scenario_auth_failure(port: int) -> None:
    """Wrong password: RabbitMQ answers start-ok with connection.close 403."""
    try:
        connect(port, "auth-failure", credentials=pika.PlainCredentials("guest", "wrong-password"))
    except pika.exceptions.ProbableAuthenticationError:
        return
    raise AssertionError("login unexpectedly succeeded")


SCENARIOS = {
    "declare": scenario_declare,
    "basic": scenario_basic,
    "confirm": scenario_confirm,
    "tx": scenario_tx,
    "channel-errors": scenario_channel_errors,
    "auth-failure": scenario_auth_failure,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=5673)
    ap.add_argument("scenario", choices=SCENARIOS)
    args = ap.parse_args()
    SCENARIOS[args.scenario](args.port)
    print(f"pika {pika.__version__}: {args.scenario} ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
