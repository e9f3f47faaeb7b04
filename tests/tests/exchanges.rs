//! Exchanges: routing by each exchange type, the pre-declared exchanges, declare/delete rules
//! and their errors, exchange-to-exchange bindings, auto-delete and internal exchanges.

mod common;

use lapin::options::{
    ExchangeBindOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};

use common::*;

fn passive() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    }
}

async fn exchange_exists(ch: &Channel, name: &str) -> lapin::Result<()> {
    within(
        "exchange.declare-ok (passive)",
        ch.exchange_declare(
            name.into(),
            ExchangeKind::Direct,
            passive(),
            FieldTable::default(),
        ),
    )
    .await
}

/// Declares each queue and returns them.
async fn queues(ch: &Channel, names: &[&str]) {
    for name in names {
        declare_queue(ch, name).await;
    }
}

#[tokio::test]
async fn direct_exchange_routes_by_exact_routing_key() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "logs", ExchangeKind::Direct).await;
    queues(&ch, &["errors", "infos"]).await;
    bind(&ch, "errors", "logs", "error").await;
    bind(&ch, "infos", "logs", "info").await;
    bind(&ch, "infos", "logs", "error").await;

    publish(&ch, "logs", "error", b"e1").await;
    publish(&ch, "logs", "info", b"i1").await;
    publish(&ch, "logs", "warning", b"w1").await;
    publish(&ch, "logs", "ERROR", b"E1").await;

    assert_eq!(drain(&ch, "errors").await, ["e1"]);
    assert_eq!(drain(&ch, "infos").await, ["e1", "i1"]);
}

#[tokio::test]
async fn fanout_exchange_routes_to_every_bound_queue_ignoring_key() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "fan", ExchangeKind::Fanout).await;
    queues(&ch, &["f1", "f2", "unbound"]).await;
    bind(&ch, "f1", "fan", "").await;
    bind(&ch, "f2", "fan", "whatever").await;

    publish(&ch, "fan", "any.key", b"m1").await;
    publish(&ch, "fan", "", b"m2").await;

    assert_eq!(drain(&ch, "f1").await, ["m1", "m2"]);
    assert_eq!(drain(&ch, "f2").await, ["m1", "m2"]);
    assert!(drain(&ch, "unbound").await.is_empty());
}

#[tokio::test]
async fn topic_exchange_matches_star_and_hash_wildcards() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "topics", ExchangeKind::Topic).await;
    let bindings = [
        ("star_mid", "a.*.c"),
        ("hash_tail", "a.#"),
        ("hash_all", "#"),
        ("star_one", "*"),
        ("hash_mid", "a.#.c"),
        ("exact", "a.b.c"),
        ("star_star", "*.*"),
    ];
    for (queue, key) in bindings {
        declare_queue(&ch, queue).await;
        bind(&ch, queue, "topics", key).await;
    }
    for key in ["a.b.c", "a", "a.b", "a.c", "a.x.y.c", "b", "x.b.c", ""] {
        publish(&ch, "topics", key, key.as_bytes()).await;
    }

    assert_eq!(drain(&ch, "star_mid").await, ["a.b.c"]);
    assert_eq!(
        drain(&ch, "hash_tail").await,
        ["a.b.c", "a", "a.b", "a.c", "a.x.y.c"]
    );
    assert_eq!(
        drain(&ch, "hash_all").await,
        ["a.b.c", "a", "a.b", "a.c", "a.x.y.c", "b", "x.b.c", ""]
    );
    assert_eq!(drain(&ch, "star_one").await, ["a", "b"]);
    assert_eq!(drain(&ch, "hash_mid").await, ["a.b.c", "a.c", "a.x.y.c"]);
    assert_eq!(drain(&ch, "exact").await, ["a.b.c"]);
    assert_eq!(drain(&ch, "star_star").await, ["a.b", "a.c"]);
}

#[tokio::test]
async fn topic_exchange_treats_empty_words_as_words() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "topics", ExchangeKind::Topic).await;
    let bindings = [
        ("mid", "a.*.b"),
        ("lead", "*.a"),
        ("trail", "a.*"),
        ("tail_hash", "#.b"),
        ("hash_hash", "a.#.#"),
    ];
    for (queue, key) in bindings {
        declare_queue(&ch, queue).await;
        bind(&ch, queue, "topics", key).await;
    }
    for key in ["a..b", ".a", "a.", "a.b", "b", "a"] {
        publish(&ch, "topics", key, key.as_bytes()).await;
    }
    assert_eq!(drain(&ch, "mid").await, ["a..b"]);
    assert_eq!(drain(&ch, "lead").await, [".a"]);
    assert_eq!(drain(&ch, "trail").await, ["a.", "a.b"]);
    assert_eq!(drain(&ch, "tail_hash").await, ["a..b", "a.b", "b"]);
    assert_eq!(drain(&ch, "hash_hash").await, ["a..b", "a.", "a.b", "a"]);
}

#[tokio::test]
async fn topic_exchange_delivers_once_when_several_bindings_match() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "topics", ExchangeKind::Topic).await;
    declare_queue(&ch, "q").await;
    for key in ["a.*", "a.#", "#", "*.b", "a.b"] {
        bind(&ch, "q", "topics", key).await;
    }
    publish(&ch, "topics", "a.b", b"once").await;
    assert_eq!(drain(&ch, "q").await, ["once"]);
}

fn headers(entries: &[(&str, &str)]) -> BasicProperties {
    let entries: Vec<(&str, AMQPValue)> = entries.iter().map(|(k, v)| (*k, long_str(v))).collect();
    BasicProperties::default().with_headers(table(&entries))
}

#[tokio::test]
async fn headers_exchange_x_match_all_requires_every_header() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "hdrs", ExchangeKind::Headers).await;
    declare_queue(&ch, "all").await;
    within(
        "queue.bind-ok",
        ch.queue_bind(
            "all".into(),
            "hdrs".into(),
            "".into(),
            Default::default(),
            table(&[
                ("x-match", long_str("all")),
                ("format", long_str("pdf")),
                ("type", long_str("report")),
            ]),
        ),
    )
    .await
    .expect("queue.bind");

    let cases = [
        ("both", vec![("format", "pdf"), ("type", "report")]),
        (
            "both+extra",
            vec![("format", "pdf"), ("type", "report"), ("x", "y")],
        ),
        ("one", vec![("format", "pdf")]),
        ("wrong", vec![("format", "pdf"), ("type", "log")]),
        ("none", vec![]),
    ];
    for (body, hs) in &cases {
        publish_with(&ch, "hdrs", "ignored", body.as_bytes(), headers(hs)).await;
    }
    assert_eq!(drain(&ch, "all").await, ["both", "both+extra"]);
}

#[tokio::test]
async fn headers_exchange_x_match_any_requires_one_header() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "hdrs", ExchangeKind::Headers).await;
    declare_queue(&ch, "any").await;
    within(
        "queue.bind-ok",
        ch.queue_bind(
            "any".into(),
            "hdrs".into(),
            "".into(),
            Default::default(),
            table(&[
                ("x-match", long_str("any")),
                ("format", long_str("pdf")),
                ("type", long_str("report")),
            ]),
        ),
    )
    .await
    .expect("queue.bind");

    let cases = [
        ("both", vec![("format", "pdf"), ("type", "report")]),
        ("format", vec![("format", "pdf")]),
        ("type", vec![("type", "report"), ("format", "zip")]),
        ("wrong", vec![("format", "zip"), ("type", "log")]),
        ("none", vec![]),
    ];
    for (body, hs) in &cases {
        publish_with(&ch, "hdrs", "", body.as_bytes(), headers(hs)).await;
    }
    assert_eq!(drain(&ch, "any").await, ["both", "format", "type"]);
}

#[tokio::test]
async fn headers_exchange_defaults_to_x_match_all() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    within(
        "queue.bind-ok",
        ch.queue_bind(
            "q".into(),
            "amq.headers".into(),
            "".into(),
            Default::default(),
            table(&[("a", long_str("1")), ("b", long_str("2"))]),
        ),
    )
    .await
    .expect("queue.bind");
    publish_with(&ch, "amq.headers", "", b"a", headers(&[("a", "1")])).await;
    publish_with(
        &ch,
        "amq.headers",
        "",
        b"ab",
        headers(&[("a", "1"), ("b", "2")]),
    )
    .await;
    assert_eq!(drain(&ch, "q").await, ["ab"]);
}

#[tokio::test]
async fn headers_exchange_ignores_x_arguments_and_compares_integers_by_value() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    within(
        "queue.bind-ok",
        ch.queue_bind(
            "q".into(),
            "amq.headers".into(),
            "".into(),
            Default::default(),
            table(&[
                ("x-match", long_str("all")),
                ("x-extra", long_str("not-a-header-to-match")),
                ("n", AMQPValue::LongInt(5)),
                ("present", AMQPValue::Void),
            ]),
        ),
    )
    .await
    .expect("queue.bind");
    let cases: [(&str, Vec<(&str, AMQPValue)>); 4] = [
        (
            "int64",
            vec![
                ("n", AMQPValue::LongLongInt(5)),
                ("present", long_str("anything")),
            ],
        ),
        (
            "int16",
            vec![
                ("n", AMQPValue::ShortInt(5)),
                ("present", AMQPValue::LongInt(1)),
            ],
        ),
        (
            "string",
            vec![("n", long_str("5")), ("present", long_str("x"))],
        ),
        ("absent", vec![("n", AMQPValue::LongInt(5))]),
    ];
    for (body, hs) in &cases {
        let props = BasicProperties::default().with_headers(table(hs));
        publish_with(&ch, "amq.headers", "", body.as_bytes(), props).await;
    }
    assert_eq!(drain(&ch, "q").await, ["int64", "int16"]);
}

#[tokio::test]
async fn headers_exchange_with_no_arguments_matches_all_or_nothing() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "all").await;
    declare_queue(&ch, "any").await;
    for (queue, mode) in [("all", "all"), ("any", "any")] {
        within(
            "queue.bind-ok",
            ch.queue_bind(
                queue.into(),
                "amq.match".into(),
                "".into(),
                Default::default(),
                table(&[("x-match", long_str(mode))]),
            ),
        )
        .await
        .expect("queue.bind");
    }
    publish_with(&ch, "amq.match", "", b"h", headers(&[("k", "v")])).await;
    publish(&ch, "amq.match", "", b"no-headers").await;
    assert_eq!(drain(&ch, "all").await, ["h", "no-headers"]);
    assert!(drain(&ch, "any").await.is_empty());
}

#[tokio::test]
async fn default_exchange_routes_by_queue_name() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    queues(&ch, &["alpha", "beta"]).await;
    publish(&ch, "", "alpha", b"to-alpha").await;
    publish(&ch, "", "beta", b"to-beta").await;
    publish(&ch, "", "gamma", b"to-nobody").await;
    assert_eq!(drain(&ch, "alpha").await, ["to-alpha"]);
    assert_eq!(drain(&ch, "beta").await, ["to-beta"]);
}

#[tokio::test]
async fn predeclared_amq_exchanges_exist_with_their_types() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    let predeclared = [
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
        ("amq.topic", ExchangeKind::Topic),
        ("amq.headers", ExchangeKind::Headers),
        ("amq.match", ExchangeKind::Headers),
    ];
    for (name, kind) in predeclared {
        exchange_exists(&ch, name)
            .await
            .unwrap_or_else(|e| panic!("{name} exists: {e:?}"));
        // An equivalent redeclare (same type, durable) is accepted even with the amq. prefix.
        within(
            "exchange.declare-ok",
            ch.exchange_declare(
                name.into(),
                kind,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{name} redeclared as itself: {e:?}"));
    }
}

#[tokio::test]
async fn predeclared_exchanges_route() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    bind(&ch, "q", "amq.direct", "d").await;
    bind(&ch, "q", "amq.fanout", "").await;
    bind(&ch, "q", "amq.topic", "t.#").await;
    publish(&ch, "amq.direct", "d", b"direct").await;
    publish(&ch, "amq.fanout", "x", b"fanout").await;
    publish(&ch, "amq.topic", "t.1.2", b"topic").await;
    assert_eq!(drain(&ch, "q").await, ["direct", "fanout", "topic"]);
}

#[tokio::test]
async fn redeclare_with_different_type_fails_with_406() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "x1", ExchangeKind::Direct).await;
    let result = ch
        .exchange_declare(
            "x1".into(),
            ExchangeKind::Fanout,
            Default::default(),
            FieldTable::default(),
        )
        .await;
    assert_closed_with(
        result,
        406,
        &format!(
            "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x1' in vhost '{vh}': \
             received 'fanout' but current is 'direct'"
        ),
    );
    // Only the channel was closed, and the exchange is unchanged.
    let ch2 = open_channel(&conn).await;
    declare_exchange(&ch2, "x1", ExchangeKind::Direct).await;
}

#[tokio::test]
async fn redeclare_with_different_durable_fails_with_406() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "x1", ExchangeKind::Direct).await;
    let result = ch
        .exchange_declare(
            "x1".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    assert_closed_with(
        result,
        406,
        &format!(
            "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'x1' in vhost '{vh}': \
             received 'true' but current is 'false'"
        ),
    );
}

#[tokio::test]
async fn redeclare_predeclared_exchange_as_non_durable_fails_with_406() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_conn, ch) = connect_channel(&broker).await;
    let result = ch
        .exchange_declare(
            "amq.direct".into(),
            ExchangeKind::Direct,
            Default::default(),
            FieldTable::default(),
        )
        .await;
    assert_closed_with(
        result,
        406,
        &format!(
            "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'amq.direct' in vhost \
             '{vh}': received 'false' but current is 'true'"
        ),
    );
}

#[tokio::test]
async fn redeclare_with_extra_arguments_is_accepted() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "x1", ExchangeKind::Direct).await;
    within(
        "exchange.declare-ok",
        ch.exchange_declare(
            "x1".into(),
            ExchangeKind::Direct,
            Default::default(),
            table(&[("x-foo", AMQPValue::LongInt(1))]),
        ),
    )
    .await
    .expect("exchange arguments are not compared");
}

#[tokio::test]
async fn declare_with_amq_prefix_fails_with_403() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    let result = ch
        .exchange_declare(
            "amq.foo".into(),
            ExchangeKind::Direct,
            Default::default(),
            FieldTable::default(),
        )
        .await;
    assert_closed_with(
        result,
        403,
        "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'",
    );
}

#[tokio::test]
async fn declare_default_exchange_fails_with_403() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    let result = ch
        .exchange_declare(
            "".into(),
            ExchangeKind::Direct,
            Default::default(),
            FieldTable::default(),
        )
        .await;
    assert_closed_with(
        result,
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    );
}

#[tokio::test]
async fn declare_with_unknown_type_closes_connection_with_503() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    let result = ch
        .exchange_declare(
            "weird".into(),
            ExchangeKind::Custom("bogus".into()),
            Default::default(),
            FieldTable::default(),
        )
        .await;
    assert_closed_with(
        result,
        503,
        "COMMAND_INVALID - unknown exchange type 'bogus'",
    );
    for _ in 0..50 {
        if !conn.status().connected() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        !conn.status().connected(),
        "503 is a connection error: {:?}",
        conn.status()
    );
}

#[tokio::test]
async fn passive_declare_of_missing_exchange_fails_with_404() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_conn, ch) = connect_channel(&broker).await;
    assert_closed_with(
        exchange_exists(&ch, "nope").await,
        404,
        &format!("NOT_FOUND - no exchange 'nope' in vhost '{vh}'"),
    );
}

#[tokio::test]
async fn passive_declare_ignores_type() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "x1", ExchangeKind::Fanout).await;
    exchange_exists(&ch, "x1")
        .await
        .expect("a passive declare with another type still succeeds");
}

#[tokio::test]
async fn deleting_a_system_exchange_is_refused_with_403() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_conn, ch) = connect_channel(&broker).await;
    let result = ch
        .exchange_delete("amq.direct".into(), Default::default())
        .await;
    assert_closed_with(
        result,
        403,
        &format!(
            "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '{vh}' not allowed"
        ),
    );
    let (_conn, ch) = connect_channel(&broker).await;
    exchange_exists(&ch, "amq.direct")
        .await
        .expect("amq.direct is still there");
}

#[tokio::test]
async fn delete_if_unused_with_bindings_fails_with_406() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "xbound", ExchangeKind::Direct).await;
    declare_queue(&ch, "q").await;
    bind(&ch, "q", "xbound", "k").await;
    let result = ch
        .exchange_delete(
            "xbound".into(),
            ExchangeDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        )
        .await;
    assert_closed_with(
        result,
        406,
        &format!("PRECONDITION_FAILED - exchange 'xbound' in vhost '{vh}' in use"),
    );

    // Still there and still routing; a plain delete works.
    let ch2 = open_channel(&conn).await;
    publish(&ch2, "xbound", "k", b"still").await;
    assert_eq!(drain(&ch2, "q").await, ["still"]);
    within(
        "exchange.delete-ok",
        ch2.exchange_delete("xbound".into(), Default::default()),
    )
    .await
    .expect("exchange.delete");
    assert!(exchange_exists(&ch2, "xbound").await.is_err());
}

#[tokio::test]
async fn delete_if_unused_without_bindings_succeeds() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "lonely", ExchangeKind::Topic).await;
    within(
        "exchange.delete-ok",
        ch.exchange_delete(
            "lonely".into(),
            ExchangeDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        ),
    )
    .await
    .expect("exchange.delete if_unused");
    let ch2 = open_channel(&conn).await;
    assert!(exchange_exists(&ch2, "lonely").await.is_err());
}

#[tokio::test]
async fn delete_of_missing_exchange_succeeds() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    within(
        "exchange.delete-ok",
        ch.exchange_delete("never-declared".into(), Default::default()),
    )
    .await
    .expect("deleting a missing exchange is not an error");
}

#[tokio::test]
async fn deleting_exchange_removes_its_bindings() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "x", ExchangeKind::Direct).await;
    declare_queue(&ch, "q").await;
    bind(&ch, "q", "x", "k").await;
    within(
        "exchange.delete-ok",
        ch.exchange_delete("x".into(), Default::default()),
    )
    .await
    .expect("exchange.delete");
    // A new exchange of the same name starts without the old binding.
    declare_exchange(&ch, "x", ExchangeKind::Direct).await;
    publish(&ch, "x", "k", b"lost").await;
    assert!(drain(&ch, "q").await.is_empty());
}

async fn exchange_bind(ch: &Channel, destination: &str, source: &str, key: &str) {
    within(
        "exchange.bind-ok",
        ch.exchange_bind(
            destination.into(),
            source.into(),
            key.into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("exchange.bind");
}

#[tokio::test]
async fn exchange_to_exchange_binding_routes() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "src", ExchangeKind::Topic).await;
    declare_exchange(&ch, "dst", ExchangeKind::Direct).await;
    declare_queue(&ch, "q").await;
    bind(&ch, "q", "dst", "a.b").await;
    exchange_bind(&ch, "dst", "src", "a.*").await;

    publish(&ch, "src", "a.b", b"via-src").await;
    publish(&ch, "src", "a.c", b"dropped-by-dst").await;
    publish(&ch, "src", "z.b", b"dropped-by-src").await;
    publish(&ch, "dst", "a.b", b"direct").await;
    assert_eq!(drain(&ch, "q").await, ["via-src", "direct"]);

    within(
        "exchange.unbind-ok",
        ch.exchange_unbind(
            "dst".into(),
            "src".into(),
            "a.*".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("exchange.unbind");
    publish(&ch, "src", "a.b", b"after-unbind").await;
    assert!(drain(&ch, "q").await.is_empty());
}

#[tokio::test]
async fn exchange_bind_with_missing_source_or_destination_fails_with_404() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "real", ExchangeKind::Fanout).await;
    for (destination, source) in [("real", "ghost"), ("ghost", "real")] {
        let ch = open_channel(&conn).await;
        let result = within(
            "exchange.bind",
            ch.exchange_bind(
                destination.into(),
                source.into(),
                "".into(),
                ExchangeBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await;
        assert_closed_with(
            result,
            404,
            &format!("NOT_FOUND - no exchange 'ghost' in vhost '{vh}'"),
        );
    }
}

#[tokio::test]
async fn deleting_destination_exchange_removes_exchange_binding() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "src", ExchangeKind::Fanout).await;
    declare_exchange(&ch, "dst", ExchangeKind::Fanout).await;
    declare_queue(&ch, "q").await;
    exchange_bind(&ch, "dst", "src", "").await;
    bind(&ch, "q", "dst", "").await;
    within(
        "exchange.delete-ok",
        ch.exchange_delete("dst".into(), Default::default()),
    )
    .await
    .expect("exchange.delete");
    declare_exchange(&ch, "dst", ExchangeKind::Fanout).await;
    bind(&ch, "q", "dst", "").await;
    publish(&ch, "src", "", b"lost").await;
    assert!(drain(&ch, "q").await.is_empty(), "src no longer feeds dst");
}

#[tokio::test]
async fn auto_delete_exchange_is_deleted_when_its_last_exchange_binding_is_removed() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    within(
        "exchange.declare-ok",
        ch.exchange_declare(
            "ephemeral".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("exchange.declare auto_delete");
    declare_exchange(&ch, "dst", ExchangeKind::Fanout).await;
    exchange_bind(&ch, "dst", "ephemeral", "").await;
    within(
        "exchange.unbind-ok",
        ch.exchange_unbind(
            "dst".into(),
            "ephemeral".into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("exchange.unbind");
    assert!(
        exchange_exists(&ch, "ephemeral").await.is_err(),
        "the source lost its last binding"
    );
}

#[tokio::test]
async fn exchange_binding_loop_delivers_each_message_once() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "x1", ExchangeKind::Fanout).await;
    declare_exchange(&ch, "x2", ExchangeKind::Fanout).await;
    queues(&ch, &["q1", "q2", "both"]).await;
    exchange_bind(&ch, "x2", "x1", "").await;
    exchange_bind(&ch, "x1", "x2", "").await;
    bind(&ch, "q1", "x1", "").await;
    bind(&ch, "q2", "x2", "").await;
    bind(&ch, "both", "x1", "").await;
    bind(&ch, "both", "x2", "").await;

    within("confirm.select-ok", ch.confirm_select(Default::default()))
        .await
        .expect("confirm.select");
    for (exchange, body) in [("x1", "from-x1"), ("x2", "from-x2")] {
        let confirm = within(
            "basic.publish",
            ch.basic_publish(
                exchange.into(),
                "".into(),
                Default::default(),
                body.as_bytes(),
                BasicProperties::default(),
            ),
        )
        .await
        .expect("basic.publish");
        let confirmation = within("basic.ack for a publish into a loop", confirm)
            .await
            .expect("confirm");
        assert!(confirmation.is_ack());
    }
    assert_eq!(drain(&ch, "q1").await, ["from-x1", "from-x2"]);
    assert_eq!(drain(&ch, "q2").await, ["from-x1", "from-x2"]);
    assert_eq!(drain(&ch, "both").await, ["from-x1", "from-x2"]);
}

#[tokio::test]
async fn auto_delete_exchange_is_deleted_when_last_queue_binding_is_removed() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    within(
        "exchange.declare-ok",
        ch.exchange_declare(
            "ephemeral".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("exchange.declare auto_delete");
    // Without any binding yet it stays.
    exchange_exists(&ch, "ephemeral")
        .await
        .expect("an auto-delete exchange that never had a binding stays");
    queues(&ch, &["q1", "q2"]).await;
    bind(&ch, "q1", "ephemeral", "a").await;
    bind(&ch, "q2", "ephemeral", "b").await;

    let unbind = |q: &'static str, k: &'static str| {
        ch.queue_unbind(
            q.into(),
            "ephemeral".into(),
            k.into(),
            FieldTable::default(),
        )
    };
    within("queue.unbind-ok", unbind("q1", "a"))
        .await
        .expect("queue.unbind");
    exchange_exists(&ch, "ephemeral")
        .await
        .expect("still one binding left");
    within("queue.unbind-ok", unbind("q2", "b"))
        .await
        .expect("queue.unbind");

    let vh = vhost(&broker);
    assert_closed_with(
        exchange_exists(&ch, "ephemeral").await,
        404,
        &format!("NOT_FOUND - no exchange 'ephemeral' in vhost '{vh}'"),
    );
    drop(conn);
}

#[tokio::test]
async fn auto_delete_exchange_is_deleted_when_its_bound_queue_is_deleted() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    within(
        "exchange.declare-ok",
        ch.exchange_declare(
            "ephemeral".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("exchange.declare auto_delete");
    declare_queue(&ch, "q").await;
    bind(&ch, "q", "ephemeral", "").await;
    within(
        "queue.delete-ok",
        ch.queue_delete("q".into(), QueueDeleteOptions::default()),
    )
    .await
    .expect("queue.delete");
    assert!(
        exchange_exists(&ch, "ephemeral").await.is_err(),
        "the exchange lost its last binding with the queue"
    );
    drop(conn);
}

#[tokio::test]
async fn publish_to_internal_exchange_fails_with_403() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let mut w = watched_channel(&broker).await;
    within(
        "exchange.declare-ok",
        w.ch.exchange_declare(
            amqprs::channel::ExchangeDeclareArguments::new("xin", "fanout")
                .internal(true)
                .finish(),
        ),
    )
    .await
    .expect("exchange.declare internal");
    w.publish(amqprs::BasicProperties::default(), "xin", "", b"refused")
        .await;
    w.expect_channel_close(
        403,
        &format!("ACCESS_REFUSED - cannot publish to internal exchange 'xin' in vhost '{vh}'"),
    )
    .await;
}

#[tokio::test]
async fn internal_exchange_routes_messages_from_bound_exchanges() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "front", ExchangeKind::Direct).await;
    within(
        "exchange.declare-ok",
        ch.exchange_declare(
            "back".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                internal: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("exchange.declare internal");
    declare_queue(&ch, "q").await;
    bind(&ch, "q", "back", "").await;
    exchange_bind(&ch, "back", "front", "k").await;
    publish(&ch, "front", "k", b"through").await;
    assert_eq!(drain(&ch, "q").await, ["through"]);
}
