//! Flow control: the memory high watermark blocks publishers with connection.blocked and lets
//! them go with connection.unblocked once consumers have drained the queues.
//!
//! lapin announces the `connection.blocked` capability, records blocked/unblocked in
//! `Connection::status().blocked()`, and sends nothing at all while blocked. amqprs does not
//! announce the capability, so the broker never tells it (it still stops reading a publishing
//! amqprs connection); the draining consumers here use amqprs so that they keep working
//! whatever the broker tells lapin connections.

mod common;

use std::time::Duration;

use amqprs::BasicProperties as AProps;
use amqprs::channel::{BasicConsumeArguments, BasicPublishArguments, QueueDeclareArguments};
use amqprs::connection::{Connection as AConnection, OpenConnectionArguments};
use lapin::options::BasicConsumeOptions;
use lapin::{Channel, Connection};
use rmqd_broker::BrokerConfig;

use common::*;

const WATERMARK: usize = 1 << 20;
const MESSAGE: usize = 64 << 10;
/// Twice the watermark's worth of messages.
const COUNT: usize = 2 * WATERMARK / MESSAGE;

fn small_watermark() -> TestBroker {
    TestBroker::start_with(
        BrokerConfig {
            memory_high_watermark: WATERMARK,
            ..Default::default()
        },
        |_| {},
    )
}

/// Polls `cond` every 10 ms until it holds, failing the test after [`WAIT`].
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Publishes `count` messages of [`MESSAGE`] bytes, numbered in their first 4 bytes, in a task
/// (a blocked publisher's writes stall until it is unblocked).
fn spawn_publisher(ch: &Channel, queue: &'static str, count: usize) -> tokio::task::JoinHandle<()> {
    let ch = ch.clone();
    tokio::spawn(async move {
        for i in 0..count {
            let mut body = vec![0xAB; MESSAGE];
            body[..4].copy_from_slice(&(i as u32).to_be_bytes());
            ch.basic_publish(
                "".into(),
                queue.into(),
                Default::default(),
                &body,
                Default::default(),
            )
            .await
            .expect("basic.publish");
        }
    })
}

fn number(data: &[u8]) -> usize {
    u32::from_be_bytes(data[..4].try_into().expect("numbered body")) as usize
}

/// An amqprs no-ack consumer, with its connection and channel kept open.
struct Drain {
    conn: AConnection,
    _channel: amqprs::channel::Channel,
    deliveries: tokio::sync::mpsc::UnboundedReceiver<amqprs::channel::ConsumerMessage>,
}

/// Consumes `queue` with amqprs (no ack), checking that the first `count` messages arrive
/// complete and in order.
async fn drain_with_amqprs(broker: &TestBroker, queue: &str, count: usize) -> Drain {
    let conn = amqprs_connect(broker).await;
    let channel = within("channel.open-ok", conn.open_channel(None))
        .await
        .expect("channel.open");
    let (_tag, mut deliveries) = within(
        "basic.consume-ok",
        channel.basic_consume_rx(
            BasicConsumeArguments::new(queue, "drain")
                .auto_ack(true)
                .finish(),
        ),
    )
    .await
    .expect("basic.consume");
    for i in 0..count {
        let msg = within("a delivery", deliveries.recv())
            .await
            .expect("a delivery");
        let content = msg.content.expect("content");
        assert_eq!(number(&content), i, "messages arrive complete and in order");
        assert_eq!(content.len(), MESSAGE);
    }
    Drain {
        conn,
        _channel: channel,
        deliveries,
    }
}

/// A lapin no-ack consumer that checks the first `count` messages, as [`drain_with_amqprs`].
async fn drain_with_lapin(conn: &Connection, queue: &str, count: usize) -> Consumer {
    let ch = open_channel(conn).await;
    let mut consumer = consume(
        &ch,
        queue,
        "drain",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
    )
    .await
    .expect("basic.consume");
    for i in 0..count {
        let d = consumer.next().await;
        assert_eq!(number(&d.data), i, "messages arrive complete and in order");
        assert_eq!(d.data.len(), MESSAGE);
    }
    consumer
}

#[tokio::test]
async fn publisher_over_watermark_is_blocked_then_unblocked_after_drain() {
    let broker = small_watermark();
    let (publisher, pch) = connect_channel(&broker).await;
    declare_queue(&pch, "q").await;

    let publishing = spawn_publisher(&pch, "q", COUNT);
    wait_for("connection.blocked", || publisher.status().blocked()).await;
    assert!(broker.broker.memory.alarm());
    assert!(
        broker.broker.memory.used() > WATERMARK,
        "blocked because the queue holds more than the watermark"
    );

    // A consumer drains everything, including what the publisher sent while it was blocked.
    let mut drain = drain_with_amqprs(&broker, "q", COUNT).await;
    wait_for("connection.unblocked", || !publisher.status().blocked()).await;
    within("the publisher task", publishing)
        .await
        .expect("every publish went out");
    assert!(!broker.broker.memory.alarm());

    // The publisher can publish again.
    publish(&pch, "", "q", b"after").await;
    let msg = within("a delivery", drain.deliveries.recv())
        .await
        .expect("a delivery");
    assert_eq!(msg.content.as_deref(), Some(&b"after"[..]));
    assert!(!publisher.status().blocked());
    drain.conn.close().await.expect("connection.close");
}

#[tokio::test]
async fn memory_in_use_returns_to_zero_once_messages_are_consumed() {
    let broker = small_watermark();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let cch = open_channel(&conn).await;
    let mut consumer = consume_acked(&cch, "q", "c").await;
    publish(&ch, "", "q", &[1u8; 4096]).await;
    let d = consumer.next().await;
    assert!(
        broker.broker.memory.used() >= 4096,
        "an unacked message is still held"
    );
    within(
        "basic.ack",
        cch.basic_ack(d.delivery_tag, Default::default()),
    )
    .await
    .expect("basic.ack");
    wait_for("memory to be released", || broker.broker.memory.used() == 0).await;
}

#[tokio::test]
async fn connection_that_does_not_publish_is_not_sent_connection_blocked() {
    let broker = small_watermark();
    let (publisher, pch) = connect_channel(&broker).await;
    declare_queue(&pch, "q").await;
    // An idle connection, open before the alarm.
    let (idle, _ich) = connect_channel(&broker).await;

    let publishing = spawn_publisher(&pch, "q", COUNT);
    wait_for("connection.blocked", || publisher.status().blocked()).await;
    tokio::time::sleep(QUIET).await;
    assert!(
        !idle.status().blocked(),
        "a connection that does not publish is not told it is blocked"
    );

    let _drain = drain_with_amqprs(&broker, "q", COUNT).await;
    wait_for("connection.unblocked", || !publisher.status().blocked()).await;
    within("the publisher task", publishing)
        .await
        .expect("every publish went out");
    assert!(!idle.status().blocked());
}

#[tokio::test]
async fn connection_opened_during_alarm_is_blocked_only_once_it_publishes() {
    let broker = small_watermark();
    let (first, pch) = connect_channel(&broker).await;
    declare_queue(&pch, "q").await;
    let first_publishing = spawn_publisher(&pch, "q", COUNT);
    wait_for("connection.blocked", || first.status().blocked()).await;

    // Connected while the alarm is on: not blocked yet, and it can work normally...
    let (late, lch) = connect_channel(&broker).await;
    tokio::time::sleep(QUIET).await;
    assert!(!late.status().blocked(), "not blocked before it publishes");
    declare_queue(&lch, "late").await;

    // ...until it publishes.
    let late_publishing = {
        let lch = lch.clone();
        tokio::spawn(async move { publish(&lch, "", "late", b"late").await })
    };
    wait_for("connection.blocked for the late publisher", || {
        late.status().blocked()
    })
    .await;

    let _drain = drain_with_amqprs(&broker, "q", COUNT).await;
    wait_for("connection.unblocked", || {
        !first.status().blocked() && !late.status().blocked()
    })
    .await;
    within("the first publisher", first_publishing)
        .await
        .expect("publishes went out");
    within("the late publisher", late_publishing)
        .await
        .expect("publish went out");
}

#[tokio::test]
async fn lapin_consumer_connecting_during_alarm_drains_queue_and_unblocks_publisher() {
    let broker = small_watermark();
    let (publisher, pch) = connect_channel(&broker).await;
    declare_queue(&pch, "q").await;
    let publishing = spawn_publisher(&pch, "q", COUNT);
    wait_for("connection.blocked", || publisher.status().blocked()).await;

    let consumer_conn = connect(&broker).await;
    let _consumer = drain_with_lapin(&consumer_conn, "q", COUNT).await;
    wait_for("connection.unblocked", || !publisher.status().blocked()).await;
    within("the publisher task", publishing)
        .await
        .expect("every publish went out");
}

#[tokio::test]
async fn client_without_blocked_capability_is_not_notified_but_throttled() {
    let broker = small_watermark();
    let conn = amqprs_connect(&broker).await;
    let (recorder, mut notices) = Recorder::new();
    conn.register_callback(recorder).await.expect("callback");
    let ch = conn.open_channel(None).await.expect("channel.open");
    ch.queue_declare(QueueDeclareArguments::new("q"))
        .await
        .expect("queue.declare");
    let publishing = tokio::spawn(async move {
        for i in 0..COUNT {
            let mut body = vec![0xAB; MESSAGE];
            body[..4].copy_from_slice(&(i as u32).to_be_bytes());
            ch.basic_publish(AProps::default(), body, BasicPublishArguments::new("", "q"))
                .await
                .expect("basic.publish");
        }
        ch
    });
    wait_for("the memory alarm", || broker.broker.memory.alarm()).await;
    // amqprs does not announce connection.blocked, so it is not sent one.
    if let Ok(Some(notice)) = tokio::time::timeout(QUIET, notices.recv()).await {
        panic!("expected no notification, got {notice:?}");
    }
    let drain = drain_with_amqprs(&broker, "q", COUNT).await;
    let ch = within("the publisher task", publishing)
        .await
        .expect("every publish went out");
    assert!(!broker.broker.memory.alarm());
    if let Ok(Some(notice)) = tokio::time::timeout(QUIET, notices.recv()).await {
        panic!("expected no notification, got {notice:?}");
    }
    ch.close().await.expect("channel.close");
    conn.close().await.expect("connection.close");
    drain.conn.close().await.expect("connection.close");
}

#[tokio::test]
async fn publisher_is_unblocked_every_time_the_alarm_clears_under_concurrent_drain() {
    const MANY: usize = 20 * COUNT;
    for round in 0..3 {
        let broker = small_watermark();
        let (publisher, pch) = connect_channel(&broker).await;
        declare_queue(&pch, "q").await;
        // The consumer drains from the start, so the alarm goes on and off many times while
        // the publisher and the consumer run on the broker's two worker threads.
        let drain = tokio::spawn({
            let broker_addr = broker.addr;
            async move {
                let args =
                    OpenConnectionArguments::new("127.0.0.1", broker_addr.port(), "guest", "guest");
                let conn = AConnection::open(&args).await.expect("amqprs connects");
                let ch = conn.open_channel(None).await.expect("channel.open");
                let (_tag, mut rx) = ch
                    .basic_consume_rx(
                        BasicConsumeArguments::new("q", "drain")
                            .auto_ack(true)
                            .finish(),
                    )
                    .await
                    .expect("basic.consume");
                let mut received = 0;
                while received < MANY {
                    match tokio::time::timeout(WAIT, rx.recv()).await {
                        Ok(Some(_)) => received += 1,
                        _ => break,
                    }
                }
                (conn, ch, received)
            }
        });
        let publishing = spawn_publisher(&pch, "q", MANY);
        let (_conn, _ch, received) = drain.await.expect("drain task");
        assert_eq!(
            received,
            MANY,
            "round {round}: delivery stopped; broker alarm={} used={} publisher blocked={}",
            broker.broker.memory.alarm(),
            broker.broker.memory.used(),
            publisher.status().blocked()
        );
        within("the publisher task", publishing)
            .await
            .expect("every publish went out");
        assert!(!publisher.status().blocked());
    }
}
