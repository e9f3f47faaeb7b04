//! Queues: declare (server-named, passive, equivalence), TTLs and expiry, exclusive and
//! auto-delete queues, purge and delete with their preconditions, counts, and bindings.

mod common;

use std::time::Duration;

use lapin::options::{
    BasicCancelOptions, BasicQosOptions, QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};

use common::*;

async fn declare_with(
    ch: &Channel,
    name: &str,
    options: QueueDeclareOptions,
    args: FieldTable,
) -> lapin::Result<lapin::Queue> {
    within(
        "queue.declare-ok",
        ch.queue_declare(name.into(), options, args),
    )
    .await
}

fn ttl_args(ms: i32) -> FieldTable {
    table(&[("x-message-ttl", AMQPValue::LongInt(ms))])
}

fn locked(queue: &str, vhost: &str) -> String {
    format!(
        "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{queue}' in vhost \
         '{vhost}'. It could be originally declared on another connection or the exclusive \
         property value does not match that of the original declaration."
    )
}

/// Polls a passive declare until the queue is gone (on a fresh channel each time, since the
/// 404 closes the channel) or `limit` passes.
async fn wait_until_deleted(conn: &lapin::Connection, queue: &str, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let ch = open_channel(conn).await;
        if passive_declare(&ch, queue).await.is_err() {
            return true;
        }
        let _ = ch.close(200, "".into()).await;
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn server_named_queue_gets_amq_gen_name() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    let q1 = declare_queue(&ch, "").await;
    let q2 = declare_queue(&ch, "").await;
    let (n1, n2) = (q1.name().as_str(), q2.name().as_str());
    assert!(n1.starts_with("amq.gen-"), "{n1}");
    assert!(n2.starts_with("amq.gen-"), "{n2}");
    assert!(n1.len() > "amq.gen-".len(), "{n1}");
    assert_ne!(n1, n2, "each server-named queue is new");
    // The generated name is a real queue on the default exchange.
    publish(&ch, "", n1, b"hi").await;
    assert_eq!(drain(&ch, n1).await, ["hi"]);
}

#[tokio::test]
async fn declare_with_amq_prefix_fails_with_403() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    assert_closed_with(
        declare_with(&ch, "amq.q", Default::default(), FieldTable::default()).await,
        403,
        "ACCESS_REFUSED - queue name 'amq.q' contains reserved prefix 'amq.*'",
    );
}

#[tokio::test]
async fn passive_declare_of_existing_queue_succeeds() {
    let broker = TestBroker::start();
    let conn = connect(&broker).await;
    let ch = confirm_channel(&conn).await;
    declare_queue(&ch, "there").await;
    publish(&ch, "", "there", b"1").await;
    let q = passive_declare(&ch, "there")
        .await
        .expect("passive declare of an existing queue");
    assert_eq!(q.name().as_str(), "there");
    assert_eq!(q.message_count(), 1);
    assert_eq!(q.consumer_count(), 0);
}

#[tokio::test]
async fn passive_declare_of_missing_queue_fails_with_404() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_conn, ch) = connect_channel(&broker).await;
    assert_closed_with(
        passive_declare(&ch, "p_missing").await,
        404,
        &format!("NOT_FOUND - no queue 'p_missing' in vhost '{vh}'"),
    );
}

#[tokio::test]
async fn redeclare_with_different_durable_fails_with_406() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "p_q1").await;
    let result = declare_with(
        &ch,
        "p_q1",
        QueueDeclareOptions {
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
            "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'p_q1' in vhost '{vh}': \
             received 'true' but current is 'false'"
        ),
    );
}

#[tokio::test]
async fn redeclare_with_different_auto_delete_fails_with_406() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "p_q1").await;
    let result = declare_with(
        &ch,
        "p_q1",
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await;
    assert_closed_with(
        result,
        406,
        &format!(
            "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'p_q1' in vhost \
             '{vh}': received 'true' but current is 'false'"
        ),
    );
}

#[tokio::test]
async fn redeclare_with_different_message_ttl_fails_with_406() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (conn, ch) = connect_channel(&broker).await;
    declare_with(&ch, "p_q1", Default::default(), ttl_args(1000))
        .await
        .expect("queue.declare with x-message-ttl");
    assert_closed_with(
        declare_with(&ch, "p_q1", Default::default(), ttl_args(2000)).await,
        406,
        &format!(
            "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'p_q1' in vhost \
             '{vh}': received '2000' but current is '1000'"
        ),
    );
    let ch = open_channel(&conn).await;
    assert_closed_with(
        declare_with(&ch, "p_q1", Default::default(), FieldTable::default()).await,
        406,
        &format!(
            "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'p_q1' in vhost \
             '{vh}': received none but current is the value '1000' of type 'signedint'"
        ),
    );
}

#[tokio::test]
async fn redeclare_accepts_same_ttl_in_another_integer_width_and_unknown_arguments() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_with(&ch, "p_q1", Default::default(), ttl_args(1000))
        .await
        .expect("queue.declare with x-message-ttl");
    for value in [
        AMQPValue::LongLongInt(1000),
        AMQPValue::ShortInt(1000),
        AMQPValue::ShortUInt(1000),
        AMQPValue::LongUInt(1000),
    ] {
        declare_with(
            &ch,
            "p_q1",
            Default::default(),
            table(&[("x-message-ttl", value.clone())]),
        )
        .await
        .unwrap_or_else(|e| panic!("x-message-ttl 1000 as {value:?} is equivalent: {e:?}"));
    }
    declare_with(
        &ch,
        "p_q1",
        Default::default(),
        table(&[
            ("x-message-ttl", AMQPValue::LongInt(1000)),
            ("x-foo", long_str("bar")),
        ]),
    )
    .await
    .expect("unknown arguments are not compared");
}

#[tokio::test]
async fn declare_with_negative_message_ttl_fails_with_406() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_conn, ch) = connect_channel(&broker).await;
    assert_closed_with(
        declare_with(&ch, "p_qc", Default::default(), ttl_args(-1)).await,
        406,
        &format!(
            "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'p_qc' in vhost '{vh}': \
             {{value_negative,-1}}"
        ),
    );
}

#[tokio::test]
async fn declare_with_zero_expires_fails_with_406() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_conn, ch) = connect_channel(&broker).await;
    assert_closed_with(
        declare_with(
            &ch,
            "p_qc",
            Default::default(),
            table(&[("x-expires", AMQPValue::LongInt(0))]),
        )
        .await,
        406,
        &format!(
            "PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'p_qc' in vhost '{vh}': \
             {{value_zero,0}}"
        ),
    );
}

#[tokio::test]
async fn declare_with_string_message_ttl_fails_with_406() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_conn, ch) = connect_channel(&broker).await;
    assert_closed_with(
        declare_with(
            &ch,
            "p_qc",
            Default::default(),
            table(&[("x-message-ttl", long_str("abc"))]),
        )
        .await,
        406,
        &format!(
            "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'p_qc' in vhost '{vh}': \
             \"expected integer, got longstr\""
        ),
    );
}

#[tokio::test]
async fn message_ttl_expires_messages() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_with(&ch, "ttl", Default::default(), ttl_args(200))
        .await
        .expect("queue.declare with x-message-ttl");
    publish(&ch, "", "ttl", b"fresh").await;
    assert_eq!(
        get_body(&ch, "ttl").await.as_deref(),
        Some(&b"fresh"[..]),
        "a message younger than the TTL is delivered"
    );
    publish(&ch, "", "ttl", b"stale").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(get_body(&ch, "ttl").await, None, "expired after 200 ms");
    assert_eq!(message_count(&ch, "ttl").await, 0);
}

#[tokio::test]
async fn message_ttl_zero_expires_messages_without_consumers() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_with(&ch, "ttl0", Default::default(), ttl_args(0))
        .await
        .expect("queue.declare with x-message-ttl 0");
    publish(&ch, "", "ttl0", b"gone").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get_body(&ch, "ttl0").await, None);
}

#[tokio::test]
async fn per_message_expiration_expires_message() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "exp").await;
    publish_with(
        &ch,
        "",
        "exp",
        b"short-lived",
        BasicProperties::default().with_expiration("200".into()),
    )
    .await;
    publish(&ch, "", "exp", b"immortal").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(drain(&ch, "exp").await, ["immortal"]);
}

#[tokio::test]
async fn per_message_expiration_is_kept_on_delivered_message() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "exp").await;
    publish_with(
        &ch,
        "",
        "exp",
        b"m",
        BasicProperties::default().with_expiration("60000".into()),
    )
    .await;
    let got = get(&ch, "exp").await.expect("a message");
    assert_eq!(
        got.delivery
            .properties
            .expiration()
            .as_ref()
            .map(|e| e.as_str()),
        Some("60000")
    );
}

#[tokio::test]
async fn x_expires_deletes_unused_queue() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_with(
        &ch,
        "p_exp",
        Default::default(),
        table(&[("x-expires", AMQPValue::LongInt(300))]),
    )
    .await
    .expect("queue.declare with x-expires");
    passive_declare(&ch, "p_exp")
        .await
        .expect("still there right after declare");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let vh = vhost(&broker);
    assert_closed_with(
        passive_declare(&ch, "p_exp").await,
        404,
        &format!("NOT_FOUND - no queue 'p_exp' in vhost '{vh}'"),
    );
    drop(conn);
}

#[tokio::test]
async fn x_expires_is_reset_by_use() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_with(
        &ch,
        "p_exp",
        Default::default(),
        table(&[("x-expires", AMQPValue::LongInt(600))]),
    )
    .await
    .expect("queue.declare with x-expires");
    // Used every 300 ms for 1.2 s: never idle for 600 ms.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(get_body(&ch, "p_exp").await, None);
    }
    passive_declare(&ch, "p_exp")
        .await
        .expect("a queue in use does not expire");
    // Then left alone (a passive declare is a use too, so do not poll), it goes.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let vh = vhost(&broker);
    let ch = open_channel(&conn).await;
    assert_closed_with(
        passive_declare(&ch, "p_exp").await,
        404,
        &format!("NOT_FOUND - no queue 'p_exp' in vhost '{vh}'"),
    );
}

#[tokio::test]
async fn per_message_expiration_and_queue_ttl_take_the_lower() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_with(&ch, "ttl", Default::default(), ttl_args(300))
        .await
        .expect("queue.declare with x-message-ttl");
    publish_with(
        &ch,
        "",
        "ttl",
        b"long-expiration",
        BasicProperties::default().with_expiration("60000".into()),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        get_body(&ch, "ttl").await,
        None,
        "the queue's 300 ms wins over the message's 60 s"
    );
}

#[tokio::test]
async fn x_expires_does_not_delete_queue_with_consumer() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_with(
        &ch,
        "p_exp",
        Default::default(),
        table(&[("x-expires", AMQPValue::LongInt(200))]),
    )
    .await
    .expect("queue.declare with x-expires");
    let _consumer = consume_acked(&ch, "p_exp", "c").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    passive_declare(&ch, "p_exp")
        .await
        .expect("a queue with a consumer is in use and does not expire");
}

#[tokio::test]
async fn exclusive_queue_is_locked_to_its_connection() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_owner, owner_ch) = connect_channel(&broker).await;
    declare_with(
        &owner_ch,
        "p_excl",
        QueueDeclareOptions::exclusive(),
        FieldTable::default(),
    )
    .await
    .expect("exclusive queue.declare");

    let (other, ch) = connect_channel(&broker).await;
    assert_closed_with(
        passive_declare(&ch, "p_excl").await,
        405,
        &locked("p_excl", &vh),
    );
    let ch = open_channel(&other).await;
    assert_closed_with(
        declare_with(&ch, "p_excl", Default::default(), FieldTable::default()).await,
        405,
        &locked("p_excl", &vh),
    );
    let ch = open_channel(&other).await;
    assert_closed_with(
        consume(&ch, "p_excl", "c", Default::default())
            .await
            .map(|c| c.tag),
        405,
        &locked("p_excl", &vh),
    );
    let ch = open_channel(&other).await;
    assert_closed_with(
        within(
            "basic.get",
            ch.basic_get("p_excl".into(), Default::default()),
        )
        .await,
        405,
        &locked("p_excl", &vh),
    );
    let ch = open_channel(&other).await;
    assert_closed_with(
        within(
            "queue.delete",
            ch.queue_delete("p_excl".into(), Default::default()),
        )
        .await,
        405,
        &locked("p_excl", &vh),
    );
    let ch = open_channel(&other).await;
    assert_closed_with(
        within(
            "queue.purge",
            ch.queue_purge("p_excl".into(), Default::default()),
        )
        .await,
        405,
        &locked("p_excl", &vh),
    );
    let ch = open_channel(&other).await;
    assert_closed_with(
        within(
            "queue.bind",
            ch.queue_bind(
                "p_excl".into(),
                "amq.fanout".into(),
                "".into(),
                Default::default(),
                FieldTable::default(),
            ),
        )
        .await,
        405,
        &locked("p_excl", &vh),
    );

    // Publishing to it from another connection is allowed.
    let ch = confirm_channel(&other).await;
    publish(&ch, "", "p_excl", b"from-other").await;
    assert_eq!(drain(&owner_ch, "p_excl").await, ["from-other"]);
}

#[tokio::test]
async fn exclusive_queue_is_usable_from_all_channels_of_its_connection() {
    let broker = TestBroker::start();
    let (owner, ch) = connect_channel(&broker).await;
    declare_with(
        &ch,
        "p_excl",
        QueueDeclareOptions::exclusive(),
        FieldTable::default(),
    )
    .await
    .expect("exclusive queue.declare");
    let ch2 = open_channel(&owner).await;
    passive_declare(&ch2, "p_excl")
        .await
        .expect("passive declare from another channel of the owner");
    declare_with(
        &ch2,
        "p_excl",
        QueueDeclareOptions::exclusive(),
        FieldTable::default(),
    )
    .await
    .expect("redeclare by the owner");
    publish(&ch2, "", "p_excl", b"mine").await;
    assert_eq!(drain(&ch2, "p_excl").await, ["mine"]);
}

#[tokio::test]
async fn exclusive_queue_is_deleted_when_its_connection_closes() {
    let broker = TestBroker::start();
    let (owner, owner_ch) = connect_channel(&broker).await;
    declare_with(
        &owner_ch,
        "p_excl",
        QueueDeclareOptions::exclusive(),
        FieldTable::default(),
    )
    .await
    .expect("exclusive queue.declare");
    within("connection.close", owner.close(200, "bye".into()))
        .await
        .expect("connection.close");

    let (other, _ch) = connect_channel(&broker).await;
    assert!(
        wait_until_deleted(&other, "p_excl", Duration::from_secs(2)).await,
        "exclusive queue deleted with its connection"
    );
    // And its name is free for anyone.
    let ch = open_channel(&other).await;
    declare_queue(&ch, "p_excl").await;
}

#[tokio::test]
async fn auto_delete_queue_is_deleted_after_its_last_consumer_cancels() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (conn, ch) = connect_channel(&broker).await;
    declare_with(
        &ch,
        "p_ad",
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("auto-delete queue.declare");
    let _c1 = consume_acked(&ch, "p_ad", "c1").await;
    let _c2 = consume_acked(&ch, "p_ad", "c2").await;

    within(
        "basic.cancel-ok",
        ch.basic_cancel("c1".into(), BasicCancelOptions::default()),
    )
    .await
    .expect("basic.cancel");
    passive_declare(&ch, "p_ad")
        .await
        .expect("one consumer left: the queue stays");

    within(
        "basic.cancel-ok",
        ch.basic_cancel("c2".into(), BasicCancelOptions::default()),
    )
    .await
    .expect("basic.cancel");
    let ch = open_channel(&conn).await;
    assert_closed_with(
        passive_declare(&ch, "p_ad").await,
        404,
        &format!("NOT_FOUND - no queue 'p_ad' in vhost '{vh}'"),
    );
}

#[tokio::test]
async fn auto_delete_queue_without_consumers_survives_its_connection() {
    let broker = TestBroker::start();
    let (owner, ch) = connect_channel(&broker).await;
    declare_with(
        &ch,
        "p_ad",
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("auto-delete queue.declare");
    within("connection.close", owner.close(200, "bye".into()))
        .await
        .expect("connection.close");
    let (_conn, ch) = connect_channel(&broker).await;
    passive_declare(&ch, "p_ad")
        .await
        .expect("never consumed from, so never auto-deleted");
}

#[tokio::test]
async fn auto_delete_queue_is_deleted_when_consumer_connection_closes() {
    let broker = TestBroker::start();
    let (observer, _ch) = connect_channel(&broker).await;
    let (consumer_conn, ch) = connect_channel(&broker).await;
    declare_with(
        &ch,
        "p_ad",
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("auto-delete queue.declare");
    let _c = consume_acked(&ch, "p_ad", "c").await;
    within("connection.close", consumer_conn.close(200, "bye".into()))
        .await
        .expect("connection.close");
    assert!(
        wait_until_deleted(&observer, "p_ad", Duration::from_secs(2)).await,
        "the last consumer went with its connection"
    );
}

#[tokio::test]
async fn purge_returns_message_count() {
    let broker = TestBroker::start();
    let conn = connect(&broker).await;
    let ch = confirm_channel(&conn).await;
    declare_queue(&ch, "p").await;
    for i in 0..3 {
        publish(&ch, "", "p", format!("m{i}").as_bytes()).await;
    }
    let purged = within(
        "queue.purge-ok",
        ch.queue_purge("p".into(), QueuePurgeOptions::default()),
    )
    .await
    .expect("queue.purge");
    assert_eq!(purged, 3);
    assert_eq!(message_count(&ch, "p").await, 0);
    let purged = within(
        "queue.purge-ok",
        ch.queue_purge("p".into(), QueuePurgeOptions::default()),
    )
    .await
    .expect("queue.purge");
    assert_eq!(purged, 0);
}

#[tokio::test]
async fn delete_if_unused_with_consumer_fails_with_406() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "p_qd").await;
    let _consumer = consume_acked(&ch, "p_qd", "c").await;
    let ch2 = open_channel(&conn).await;
    let result = within(
        "queue.delete",
        ch2.queue_delete(
            "p_qd".into(),
            QueueDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        ),
    )
    .await;
    assert_closed_with(
        result,
        406,
        &format!("PRECONDITION_FAILED - queue 'p_qd' in vhost '{vh}' in use"),
    );
    passive_declare(&ch, "p_qd").await.expect("not deleted");
}

#[tokio::test]
async fn delete_if_empty_with_messages_fails_with_406() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let conn = connect(&broker).await;
    let ch = confirm_channel(&conn).await;
    declare_queue(&ch, "p_qe").await;
    publish(&ch, "", "p_qe", b"1").await;
    let result = within(
        "queue.delete",
        ch.queue_delete(
            "p_qe".into(),
            QueueDeleteOptions {
                if_empty: true,
                ..Default::default()
            },
        ),
    )
    .await;
    assert_closed_with(
        result,
        406,
        &format!("PRECONDITION_FAILED - queue 'p_qe' in vhost '{vh}' not empty"),
    );
    let ch = open_channel(&conn).await;
    let count = within(
        "queue.delete-ok",
        ch.queue_delete("p_qe".into(), QueueDeleteOptions::default()),
    )
    .await
    .expect("plain queue.delete");
    assert_eq!(count, 1, "delete-ok reports the messages deleted");
}

#[tokio::test]
async fn delete_if_unused_and_if_empty_on_idle_empty_queue_succeeds() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "idle").await;
    let count = within(
        "queue.delete-ok",
        ch.queue_delete(
            "idle".into(),
            QueueDeleteOptions {
                if_unused: true,
                if_empty: true,
                ..Default::default()
            },
        ),
    )
    .await
    .expect("queue.delete");
    assert_eq!(count, 0);
    let ch = open_channel(&conn).await;
    assert!(passive_declare(&ch, "idle").await.is_err());
}

#[tokio::test]
async fn delete_of_missing_queue_succeeds_with_zero() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    let count = within(
        "queue.delete-ok",
        ch.queue_delete("never-declared".into(), QueueDeleteOptions::default()),
    )
    .await
    .expect("deleting a missing queue is not an error");
    assert_eq!(count, 0);
}

#[tokio::test]
async fn deleting_queue_cancels_nothing_else_and_drops_its_messages() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "gone").await;
    publish(&ch, "", "gone", b"1").await;
    within(
        "queue.delete-ok",
        ch.queue_delete("gone".into(), QueueDeleteOptions::default()),
    )
    .await
    .expect("queue.delete");
    declare_queue(&ch, "gone").await;
    assert_eq!(message_count(&ch, "gone").await, 0, "a new, empty queue");
}

#[tokio::test]
async fn declare_ok_reports_ready_messages_and_consumers() {
    let broker = TestBroker::start();
    let conn = connect(&broker).await;
    let ch = confirm_channel(&conn).await;
    let q = declare_queue(&ch, "p_q20").await;
    assert_eq!((q.message_count(), q.consumer_count()), (0, 0));
    for i in 0..3 {
        publish(&ch, "", "p_q20", format!("m{i}").as_bytes()).await;
    }
    let q = declare_queue(&ch, "p_q20").await;
    assert_eq!((q.message_count(), q.consumer_count()), (3, 0));

    // A consumer with prefetch 1 holding one unacked message.
    let (consumer_conn, cch) = connect_channel(&broker).await;
    within("basic.qos-ok", cch.basic_qos(1, BasicQosOptions::default()))
        .await
        .expect("basic.qos");
    let mut consumer = consume_acked(&cch, "p_q20", "c20").await;
    let first = consumer.next().await;
    assert_eq!(body(&first), "m0");

    let q = declare_queue(&ch, "p_q20").await;
    assert_eq!(
        (q.message_count(), q.consumer_count()),
        (2, 1),
        "non-passive declare-ok counts ready messages only"
    );
    let q = passive_declare(&ch, "p_q20")
        .await
        .expect("passive declare");
    assert_eq!(
        (q.message_count(), q.consumer_count()),
        (2, 1),
        "passive declare-ok"
    );

    let purged = within(
        "queue.purge-ok",
        ch.queue_purge("p_q20".into(), QueuePurgeOptions::default()),
    )
    .await
    .expect("queue.purge");
    assert_eq!(purged, 2, "the unacked message is not purged");

    within("connection.close", consumer_conn.close(200, "bye".into()))
        .await
        .expect("connection.close");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let q = passive_declare(&ch, "p_q20")
        .await
        .expect("passive declare");
    assert_eq!(
        (q.message_count(), q.consumer_count()),
        (1, 0),
        "the unacked message is back, the consumer gone"
    );
}

#[tokio::test]
async fn bind_to_missing_exchange_fails_with_404() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let result = within(
        "queue.bind",
        ch.queue_bind(
            "q".into(),
            "p_missing".into(),
            "k".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await;
    assert_closed_with(
        result,
        404,
        &format!("NOT_FOUND - no exchange 'p_missing' in vhost '{vh}'"),
    );
}

#[tokio::test]
async fn bind_of_missing_queue_fails_with_404() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_conn, ch) = connect_channel(&broker).await;
    let result = within(
        "queue.bind",
        ch.queue_bind(
            "p_missing".into(),
            "amq.direct".into(),
            "k".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await;
    assert_closed_with(
        result,
        404,
        &format!("NOT_FOUND - no queue 'p_missing' in vhost '{vh}'"),
    );
}

#[tokio::test]
async fn bind_to_default_exchange_fails_with_403() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let result = within(
        "queue.bind",
        ch.queue_bind(
            "q".into(),
            "".into(),
            "k".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await;
    assert_closed_with(
        result,
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    );
}

#[tokio::test]
async fn bind_with_empty_queue_name_uses_last_declared_queue() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "first").await;
    declare_queue(&ch, "second").await;
    within(
        "queue.bind-ok",
        ch.queue_bind(
            "".into(),
            "amq.direct".into(),
            "k2".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("queue.bind with an empty queue name");
    publish(&ch, "amq.direct", "k2", b"to-last").await;
    assert_eq!(drain(&ch, "second").await, ["to-last"]);
    assert!(drain(&ch, "first").await.is_empty());
}

#[tokio::test]
async fn bind_with_empty_queue_name_and_no_declared_queue_fails_with_404() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    let result = within(
        "queue.bind",
        ch.queue_bind(
            "".into(),
            "amq.direct".into(),
            "k".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await;
    assert_closed_with(result, 404, "NOT_FOUND - no previously declared queue");
}

#[tokio::test]
async fn bind_and_unbind_with_arguments() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "hx", ExchangeKind::Headers).await;
    declare_queue(&ch, "q").await;
    let args_a = table(&[("x-match", long_str("any")), ("a", long_str("1"))]);
    let args_b = table(&[("x-match", long_str("any")), ("b", long_str("2"))]);
    for args in [&args_a, &args_b] {
        within(
            "queue.bind-ok",
            ch.queue_bind(
                "q".into(),
                "hx".into(),
                "".into(),
                Default::default(),
                args.clone(),
            ),
        )
        .await
        .expect("queue.bind with arguments");
    }
    let with_a = BasicProperties::default().with_headers(table(&[("a", long_str("1"))]));
    let with_b = BasicProperties::default().with_headers(table(&[("b", long_str("2"))]));
    publish_with(&ch, "hx", "", b"a1", with_a.clone()).await;
    publish_with(&ch, "hx", "", b"b1", with_b.clone()).await;
    assert_eq!(drain(&ch, "q").await, ["a1", "b1"]);

    // Unbinding names the binding by its arguments too: only binding A goes.
    within(
        "queue.unbind-ok",
        ch.queue_unbind("q".into(), "hx".into(), "".into(), args_a.clone()),
    )
    .await
    .expect("queue.unbind with arguments");
    publish_with(&ch, "hx", "", b"a2", with_a).await;
    publish_with(&ch, "hx", "", b"b2", with_b).await;
    assert_eq!(drain(&ch, "q").await, ["b2"]);
}

#[tokio::test]
async fn unbind_without_matching_arguments_leaves_binding() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let args = table(&[("x-tag", AMQPValue::LongInt(7))]);
    within(
        "queue.bind-ok",
        ch.queue_bind(
            "q".into(),
            "amq.direct".into(),
            "k".into(),
            Default::default(),
            args.clone(),
        ),
    )
    .await
    .expect("queue.bind");
    within(
        "queue.unbind-ok",
        ch.queue_unbind(
            "q".into(),
            "amq.direct".into(),
            "k".into(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("unbinding a binding that does not exist is not an error");
    publish(&ch, "amq.direct", "k", b"still-bound").await;
    assert_eq!(drain(&ch, "q").await, ["still-bound"]);

    within(
        "queue.unbind-ok",
        ch.queue_unbind("q".into(), "amq.direct".into(), "k".into(), args),
    )
    .await
    .expect("queue.unbind");
    publish(&ch, "amq.direct", "k", b"unbound").await;
    assert!(drain(&ch, "q").await.is_empty());
}

#[tokio::test]
async fn unbind_from_missing_exchange_or_queue_succeeds() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    for (queue, exchange) in [("q", "p_missing"), ("p_missing", "amq.direct")] {
        within(
            "queue.unbind-ok",
            ch.queue_unbind(
                queue.into(),
                exchange.into(),
                "k".into(),
                FieldTable::default(),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("unbind {queue} from {exchange}: {e:?}"));
    }
}

#[tokio::test]
async fn priority_queue_delivers_higher_priority_first_and_fifo_within_a_priority() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_with(
        &ch,
        "prio",
        Default::default(),
        table(&[("x-max-priority", AMQPValue::ShortShortUInt(10))]),
    )
    .await
    .expect("queue.declare with x-max-priority");
    for (body, priority) in [("low-1", 3), ("high", 6), ("low-2", 3), ("above-max", 200)] {
        let props = lapin::BasicProperties::default().with_priority(priority);
        publish_with(&ch, "", "prio", body.as_bytes(), props).await;
    }
    publish(&ch, "", "prio", b"none").await;
    assert_eq!(
        drain(&ch, "prio").await,
        ["above-max", "high", "low-1", "low-2", "none"]
    );
}
