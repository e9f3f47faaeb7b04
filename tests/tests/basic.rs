//! The basic class: publish (mandatory returns, errors), consume (tags, no-ack, round-robin,
//! prefetch), ack/nack/reject/recover, get, requeueing on close, server-sent cancel, and
//! message sizes from 0 bytes to 128 MiB.

mod common;

use std::time::Duration;

use amqprs::BasicProperties as AProps;
use amqprs::channel::{
    BasicAckArguments, BasicNackArguments, BasicPublishArguments, BasicQosArguments,
    BasicRejectArguments, QueueDeclareArguments,
};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, BasicRecoverOptions, BasicRejectOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, ShortString};
use lapin::{BasicProperties, Channel};

use common::*;

/// Publishes `n` messages `m0`, `m1`, … to `queue` through the default exchange.
async fn publish_n(ch: &Channel, queue: &str, n: usize) {
    for i in 0..n {
        publish(ch, "", queue, format!("m{i}").as_bytes()).await;
    }
}

async fn qos(ch: &Channel, count: u16, global: bool) {
    within(
        "basic.qos-ok",
        ch.basic_qos(count, BasicQosOptions { global }),
    )
    .await
    .expect("basic.qos");
}

async fn ack(ch: &Channel, tag: u64, multiple: bool) {
    within("basic.ack", ch.basic_ack(tag, BasicAckOptions { multiple }))
        .await
        .expect("basic.ack is sent");
}

/// A synchronous round trip on `ch`: succeeds only if the channel is still open, i.e. nothing
/// sent before it (an ack, a publish) made the broker close it.
async fn sync(ch: &Channel) -> lapin::Result<()> {
    within("basic.qos-ok", ch.basic_qos(0, BasicQosOptions::default())).await
}

// ---------------------------------------------------------------------------------------------
// publish

#[tokio::test]
async fn mandatory_unroutable_message_is_returned_with_312_no_route() {
    let broker = TestBroker::start();
    let conn = amqprs_connect(&broker).await;
    let ch = conn.open_channel(None).await.expect("channel.open");
    let (recorder, mut notices) = Recorder::new();
    ch.register_callback(recorder).await.expect("callback");

    for (exchange, key) in [("amq.direct", "nowhere"), ("", "no-such-queue")] {
        let args = BasicPublishArguments::new(exchange, key)
            .mandatory(true)
            .finish();
        ch.basic_publish(AProps::default(), b"bounce".to_vec(), args)
            .await
            .expect("basic.publish");
        match next_notice(&mut notices).await {
            Notice::Return {
                code,
                text,
                exchange: ret_exchange,
                routing_key,
                body,
            } => {
                assert_eq!((code, text.as_str()), (312, "NO_ROUTE"));
                assert_eq!(ret_exchange, exchange);
                assert_eq!(routing_key, key);
                assert_eq!(body, b"bounce");
            }
            other => panic!("expected basic.return, got {other:?}"),
        }
    }
    conn.close().await.expect("connection.close");
}

#[tokio::test]
async fn non_mandatory_unroutable_message_is_dropped_silently() {
    let broker = TestBroker::start();
    let conn = amqprs_connect(&broker).await;
    let ch = conn.open_channel(None).await.expect("channel.open");
    let (recorder, mut notices) = Recorder::new();
    ch.register_callback(recorder).await.expect("callback");
    ch.basic_publish(
        AProps::default(),
        b"lost".to_vec(),
        BasicPublishArguments::new("amq.direct", "nowhere"),
    )
    .await
    .expect("basic.publish");
    // The channel still works and nothing came back.
    ch.queue_declare(QueueDeclareArguments::new("q"))
        .await
        .expect("queue.declare after the publish");
    if let Ok(Some(notice)) = tokio::time::timeout(QUIET, notices.recv()).await {
        panic!("expected nothing, got {notice:?}");
    }
    conn.close().await.expect("connection.close");
}

#[tokio::test]
async fn publish_to_missing_exchange_closes_channel_with_404() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let mut w = watched_channel(&broker).await;
    w.publish(AProps::default(), "p_missing", "k", b"lost")
        .await;
    w.expect_channel_close(
        404,
        &format!("NOT_FOUND - no exchange 'p_missing' in vhost '{vh}'"),
    )
    .await;
    // Only the channel was closed.
    let ch2 = within("channel.open-ok", w.conn.open_channel(None))
        .await
        .expect("a new channel on the same connection");
    ch2.queue_declare(QueueDeclareArguments::new("q"))
        .await
        .expect("queue.declare on the new channel");
    w.conn.close().await.expect("connection.close");
}

#[tokio::test]
async fn publish_with_mismatched_user_id_closes_channel_with_406() {
    let broker = TestBroker::start();
    let mut w = watched_channel(&broker).await;
    w.declare_queue("q").await;
    w.publish(
        AProps::default().with_user_id("bob").finish(),
        "",
        "q",
        b"forged",
    )
    .await;
    w.expect_channel_close(
        406,
        "PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'",
    )
    .await;
}

#[tokio::test]
async fn publish_with_own_user_id_is_accepted_and_delivered() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    publish_with(
        &ch,
        "",
        "q",
        b"honest",
        BasicProperties::default().with_user_id("guest".into()),
    )
    .await;
    let got = get(&ch, "q").await.expect("the message");
    assert_eq!(
        got.delivery
            .properties
            .user_id()
            .as_ref()
            .map(|u| u.as_str()),
        Some("guest")
    );
}

#[tokio::test]
async fn publish_with_immediate_closes_connection_with_540() {
    let broker = TestBroker::start();
    let mut w = watched_channel(&broker).await;
    w.declare_queue("q").await;
    w.ch.basic_publish(
        AProps::default(),
        b"now".to_vec(),
        BasicPublishArguments::new("", "q").immediate(true).finish(),
    )
    .await
    .expect("basic.publish is sent");
    w.expect_connection_close(540, "NOT_IMPLEMENTED - immediate=true")
        .await;
}

#[tokio::test]
async fn message_properties_round_trip() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let headers = table(&[
        ("s", long_str("text")),
        ("i", AMQPValue::LongInt(-7)),
        ("l", AMQPValue::LongLongInt(1 << 40)),
        ("b", AMQPValue::Boolean(true)),
        (
            "t",
            AMQPValue::FieldTable(table(&[("nested", long_str("yes"))])),
        ),
    ]);
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("gzip".into())
        .with_headers(headers.clone())
        .with_delivery_mode(2)
        .with_priority(5)
        .with_correlation_id("corr-1".into())
        .with_reply_to("replies".into())
        .with_expiration("60000".into())
        .with_message_id("msg-1".into())
        .with_timestamp(1_700_000_000)
        .with_type("kind".into())
        .with_user_id("guest".into())
        .with_app_id("tests".into())
        .with_cluster_id("c1".into());
    publish_with(&ch, "", "q", b"{}", props.clone()).await;
    let got = get(&ch, "q").await.expect("the message");
    assert_eq!(got.delivery.properties, props);
    assert_eq!(got.delivery.data, b"{}");
    assert_eq!(got.delivery.exchange.as_str(), "");
    assert_eq!(got.delivery.routing_key.as_str(), "q");
    assert!(!got.delivery.redelivered);
}

// ---------------------------------------------------------------------------------------------
// consume

#[tokio::test]
async fn consume_with_no_ack_delivers_and_forgets() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let consume_ch = open_channel(&conn).await;
    let mut consumer = consume(
        &consume_ch,
        "q",
        "noack",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
    )
    .await
    .expect("basic.consume no_ack");
    publish_n(&ch, "q", 3).await;
    let got = consumer.take(3).await;
    assert_eq!(bodies(&got), ["m0", "m1", "m2"]);
    assert_eq!(
        got.iter().map(|d| d.delivery_tag).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Nothing is outstanding: closing the consumer's channel requeues nothing.
    within("channel.close", consume_ch.close(200, "done".into()))
        .await
        .expect("channel.close");
    assert_eq!(message_count(&ch, "q").await, 0);
}

#[tokio::test]
async fn server_generated_consumer_tag_starts_with_amq_ctag() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let mut c1 = consume_acked(&ch, "q", "").await;
    let c2 = consume_acked(&ch, "q", "").await;
    assert!(c1.tag.starts_with("amq.ctag-"), "{}", c1.tag);
    assert!(c2.tag.starts_with("amq.ctag-"), "{}", c2.tag);
    assert_ne!(c1.tag, c2.tag);
    publish(&ch, "", "q", b"x").await;
    let _ = c1.next().await;
}

#[tokio::test]
async fn deliveries_carry_consumer_exchange_and_routing_key() {
    let broker = TestBroker::start();
    let conn = amqprs_connect(&broker).await;
    let ch = conn.open_channel(None).await.expect("channel.open");
    ch.queue_declare(QueueDeclareArguments::new("q"))
        .await
        .expect("queue.declare");
    ch.queue_bind(amqprs::channel::QueueBindArguments::new(
        "q",
        "amq.topic",
        "a.*",
    ))
    .await
    .expect("queue.bind");
    let (tag, mut rx) = ch
        .basic_consume_rx(amqprs::channel::BasicConsumeArguments::new("q", "my-tag"))
        .await
        .expect("basic.consume");
    assert_eq!(tag, "my-tag");
    ch.basic_publish(
        AProps::default(),
        b"hello".to_vec(),
        BasicPublishArguments::new("amq.topic", "a.b"),
    )
    .await
    .expect("basic.publish");
    let msg = within("a delivery", rx.recv()).await.expect("delivery");
    let deliver = msg.deliver.expect("basic.deliver");
    assert_eq!(deliver.consumer_tag(), "my-tag");
    assert_eq!(deliver.exchange(), "amq.topic");
    assert_eq!(deliver.routing_key(), "a.b");
    assert_eq!(deliver.delivery_tag(), 1);
    assert!(!deliver.redelivered());
    assert_eq!(msg.content.as_deref(), Some(&b"hello"[..]));
    conn.close().await.expect("connection.close");
}

#[tokio::test]
async fn consume_on_missing_queue_closes_channel_with_404() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_conn, ch) = connect_channel(&broker).await;
    assert_closed_with(
        consume(&ch, "p_missing", "c", Default::default())
            .await
            .map(|c| c.tag),
        404,
        &format!("NOT_FOUND - no queue 'p_missing' in vhost '{vh}'"),
    );
}

#[tokio::test]
async fn exclusive_consume_on_queue_with_consumer_fails_with_403() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "p_q14").await;
    let _existing = consume_acked(&ch, "p_q14", "first").await;
    let ch2 = open_channel(&conn).await;
    let exclusive = consume(
        &ch2,
        "p_q14",
        "second",
        BasicConsumeOptions {
            exclusive: true,
            ..Default::default()
        },
    )
    .await
    .map(|c| c.tag);
    assert_closed_with(
        exclusive,
        403,
        &format!("ACCESS_REFUSED - queue 'p_q14' in vhost '{vh}' in exclusive use"),
    );
}

#[tokio::test]
async fn consume_on_queue_with_exclusive_consumer_fails_with_403() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "p_q14b").await;
    let _exclusive = consume(
        &ch,
        "p_q14b",
        "owner",
        BasicConsumeOptions {
            exclusive: true,
            ..Default::default()
        },
    )
    .await
    .expect("exclusive consume");
    let ch2 = open_channel(&conn).await;
    assert_closed_with(
        consume(&ch2, "p_q14b", "intruder", Default::default())
            .await
            .map(|c| c.tag),
        403,
        &format!("ACCESS_REFUSED - queue 'p_q14b' in vhost '{vh}' in exclusive use"),
    );
}

#[tokio::test]
async fn cancel_with_unknown_tag_succeeds() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    within(
        "basic.cancel-ok",
        ch.basic_cancel("nope".into(), BasicCancelOptions::default()),
    )
    .await
    .expect("cancelling an unknown consumer is not an error");
    sync(&ch).await.expect("channel still open");
}

#[tokio::test]
async fn cancelled_consumer_gets_no_more_deliveries() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let mut consumer = consume_acked(&ch, "q", "c").await;
    publish(&ch, "", "q", b"before").await;
    let d = consumer.next().await;
    ack(&ch, d.delivery_tag, false).await;
    within(
        "basic.cancel-ok",
        ch.basic_cancel("c".into(), BasicCancelOptions::default()),
    )
    .await
    .expect("basic.cancel");
    publish(&ch, "", "q", b"after").await;
    assert_eq!(drain(&ch, "q").await, ["after"]);
}

#[tokio::test]
async fn messages_are_round_robined_over_two_consumers() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "rr").await;
    let cch = open_channel(&conn).await;
    let mut c1 = consume(
        &cch,
        "rr",
        "c1",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
    )
    .await
    .expect("consumer 1");
    let mut c2 = consume(
        &cch,
        "rr",
        "c2",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
    )
    .await
    .expect("consumer 2");
    publish_n(&ch, "rr", 6).await;
    let got1 = c1.take(3).await;
    let got2 = c2.take(3).await;
    let (b1, b2) = (bodies(&got1), bodies(&got2));
    let evens = ["m0", "m2", "m4"];
    let odds = ["m1", "m3", "m5"];
    assert!(
        (b1 == evens && b2 == odds) || (b1 == odds && b2 == evens),
        "alternating deliveries, got {b1:?} and {b2:?}"
    );
    c1.assert_idle().await;
    c2.assert_idle().await;
}

#[tokio::test]
async fn per_consumer_prefetch_limits_unacked_deliveries() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "pf").await;
    let cch = open_channel(&conn).await;
    qos(&cch, 2, false).await;
    let mut c1 = consume_acked(&cch, "pf", "c1").await;
    let mut c2 = consume_acked(&cch, "pf", "c2").await;
    publish_n(&ch, "pf", 10).await;

    // Each consumer gets its own 2.
    let got1 = c1.take(2).await;
    let got2 = c2.take(2).await;
    c1.assert_idle().await;
    c2.assert_idle().await;
    assert_eq!(message_count(&ch, "pf").await, 6);

    // Acking one of c1's frees exactly one slot, for c1.
    ack(&cch, got1[0].delivery_tag, false).await;
    let _ = c1.next().await;
    c1.assert_idle().await;
    c2.assert_idle().await;
    drop(got2);
}

/// The next delivery from either consumer.
async fn next_of_two(c1: &mut Consumer, c2: &mut Consumer) -> lapin::message::Delivery {
    tokio::select! {
        Some(Event::Delivery(d)) = c1.events.recv() => d,
        Some(Event::Delivery(d)) = c2.events.recv() => d,
        _ = tokio::time::sleep(WAIT) => panic!("expected a delivery on {} or {}", c1.tag, c2.tag),
    }
}

#[tokio::test]
async fn per_channel_prefetch_limits_unacked_deliveries_across_consumers() {
    let broker = TestBroker::start();
    let conn = connect(&broker).await;
    let ch = confirm_channel(&conn).await;
    declare_queue(&ch, "g1").await;
    declare_queue(&ch, "g2").await;
    let cch = open_channel(&conn).await;
    qos(&cch, 3, true).await;
    let mut c1 = consume_acked(&cch, "g1", "c1").await;
    let mut c2 = consume_acked(&cch, "g2", "c2").await;
    publish_n(&ch, "g1", 5).await;
    publish_n(&ch, "g2", 5).await;

    // Three deliveries in total over both consumers, then nothing.
    let mut received = Vec::new();
    for _ in 0..3 {
        received.push(next_of_two(&mut c1, &mut c2).await);
    }
    c1.assert_idle().await;
    c2.assert_idle().await;
    let ready = message_count(&ch, "g1").await + message_count(&ch, "g2").await;
    assert_eq!(ready, 7, "10 published, 3 unacked");

    // Acking one frees one slot.
    ack(&cch, received[0].delivery_tag, false).await;
    let _ = next_of_two(&mut c1, &mut c2).await;
    c1.assert_idle().await;
    c2.assert_idle().await;
}

#[tokio::test]
async fn per_channel_prefetch_freed_by_acks_resumes_consumers_of_other_queues() {
    let broker = TestBroker::start();
    let conn = connect(&broker).await;
    let ch = confirm_channel(&conn).await;
    declare_queue(&ch, "g1").await;
    declare_queue(&ch, "g2").await;
    let cch = open_channel(&conn).await;
    qos(&cch, 3, true).await;
    let mut c1 = consume_acked(&cch, "g1", "c1").await;
    let mut c2 = consume_acked(&cch, "g2", "c2").await;

    // c1 takes the whole channel-wide allowance...
    publish_n(&ch, "g1", 3).await;
    let held = c1.take(3).await;
    // ...so g2's messages wait.
    publish_n(&ch, "g2", 2).await;
    c2.assert_idle().await;
    assert_eq!(message_count(&ch, "g2").await, 2);

    // Acking c1's messages (g1 is now empty) frees the channel for c2.
    ack(&cch, held[2].delivery_tag, true).await;
    let got = c2.take(2).await;
    assert_eq!(bodies(&got), ["m0", "m1"]);
    c1.assert_idle().await;
}

#[tokio::test]
async fn prefetch_applies_only_to_consumers_created_after_qos_when_per_consumer() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let cch = open_channel(&conn).await;
    qos(&cch, 1, false).await;
    let mut c = consume_acked(&cch, "q", "c").await;
    publish_n(&ch, "q", 3).await;
    let first = c.next().await;
    c.assert_idle().await;
    ack(&cch, first.delivery_tag, false).await;
    let second = c.next().await;
    assert_eq!(body(&second), "m1");
    c.assert_idle().await;
}

#[tokio::test]
async fn full_consumer_is_skipped_in_round_robin() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let ch1 = open_channel(&conn).await;
    qos(&ch1, 1, false).await;
    let mut slow = consume_acked(&ch1, "q", "slow").await;
    let ch2 = open_channel(&conn).await;
    let mut fast = consume(
        &ch2,
        "q",
        "fast",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
    )
    .await
    .expect("basic.consume");
    publish_n(&ch, "q", 5).await;
    let held = slow.next().await;
    let rest = fast.take(4).await;
    let mut all: Vec<&str> = bodies(&rest);
    all.push(body(&held));
    all.sort_unstable();
    assert_eq!(all, ["m0", "m1", "m2", "m3", "m4"]);
    slow.assert_idle().await;
}

#[tokio::test]
async fn per_consumer_prefetch_is_fixed_when_the_consumer_starts() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let cch = open_channel(&conn).await;
    qos(&cch, 1, false).await;
    let mut consumer = consume_acked(&cch, "q", "c").await;
    // A later basic.qos applies to consumers started after it, not to this one.
    qos(&cch, 10, false).await;
    publish_n(&ch, "q", 3).await;
    let _first = consumer.next().await;
    consumer.assert_idle().await;
}

#[tokio::test]
async fn raising_channel_prefetch_resumes_deliveries() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let cch = open_channel(&conn).await;
    qos(&cch, 1, true).await;
    let mut consumer = consume_acked(&cch, "q", "c").await;
    publish_n(&ch, "q", 3).await;
    let _first = consumer.next().await;
    consumer.assert_idle().await;
    qos(&cch, 3, true).await;
    let more = consumer.take(2).await;
    assert_eq!(bodies(&more), ["m1", "m2"]);
}

#[tokio::test]
async fn unacked_messages_can_be_acked_after_their_consumer_is_cancelled() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let cch = open_channel(&conn).await;
    let mut consumer = consume_acked(&cch, "q", "c").await;
    publish_n(&ch, "q", 2).await;
    let got = consumer.take(2).await;
    within(
        "basic.cancel-ok",
        cch.basic_cancel("c".into(), BasicCancelOptions::default()),
    )
    .await
    .expect("basic.cancel");
    // Cancelling does not requeue: the deliveries stay outstanding on the channel.
    assert_eq!(message_count(&ch, "q").await, 0);
    ack(&cch, got[0].delivery_tag, false).await;
    sync(&cch).await.expect("acking after cancel is fine");
    within("channel.close", cch.close(200, "done".into()))
        .await
        .expect("channel.close");
    assert_eq!(
        drain(&ch, "q").await,
        ["m1"],
        "only the unacked one comes back"
    );
}

// ---------------------------------------------------------------------------------------------
// acknowledgements

#[tokio::test]
async fn ack_multiple_acknowledges_every_delivery_up_to_the_tag() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let cch = open_channel(&conn).await;
    let mut consumer = consume_acked(&cch, "q", "c").await;
    publish_n(&ch, "q", 5).await;
    let got = consumer.take(5).await;
    assert_eq!(
        got.iter().map(|d| d.delivery_tag).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    ack(&cch, 3, true).await;
    sync(&cch).await.expect("multiple ack accepted");
    // Closing the channel requeues only the two not acked.
    within("channel.close", cch.close(200, "done".into()))
        .await
        .expect("channel.close");
    assert_eq!(drain(&ch, "q").await, ["m3", "m4"]);
}

#[tokio::test]
async fn ack_multiple_with_tag_zero_and_nothing_outstanding_is_accepted() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    ack(&ch, 0, true).await;
    sync(&ch).await.expect("ack multiple of tag 0 is a no-op");
}

#[tokio::test]
async fn nack_and_reject_with_requeue_redeliver_in_original_position() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    publish_n(&ch, "q", 3).await;
    let m0 = get(&ch, "q").await.expect("m0");
    let m1 = get(&ch, "q").await.expect("m1");
    assert_eq!(
        (m0.delivery.data.as_slice(), m1.delivery.data.as_slice()),
        (&b"m0"[..], &b"m1"[..])
    );
    // Requeue m1 first, then m0: each goes back to where it was, before m2.
    within(
        "basic.nack",
        ch.basic_nack(
            m1.delivery.delivery_tag,
            BasicNackOptions {
                multiple: false,
                requeue: true,
            },
        ),
    )
    .await
    .expect("basic.nack");
    within(
        "basic.reject",
        ch.basic_reject(
            m0.delivery.delivery_tag,
            BasicRejectOptions { requeue: true },
        ),
    )
    .await
    .expect("basic.reject");

    let mut seen = Vec::new();
    while let Some(m) = get(&ch, "q").await {
        seen.push((
            String::from_utf8(m.delivery.data.clone()).unwrap(),
            m.delivery.redelivered,
        ));
        ack(&ch, m.delivery.delivery_tag, false).await;
    }
    assert_eq!(
        seen,
        [
            ("m0".to_string(), true),
            ("m1".to_string(), true),
            ("m2".to_string(), false)
        ]
    );
}

#[tokio::test]
async fn consumer_sees_nacked_message_again_with_redelivered_flag() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let cch = open_channel(&conn).await;
    qos(&cch, 1, false).await;
    let mut consumer = consume_acked(&cch, "q", "c").await;
    publish_n(&ch, "q", 2).await;
    let first = consumer.next().await;
    assert_eq!((body(&first), first.redelivered), ("m0", false));
    within(
        "basic.nack",
        cch.basic_nack(
            first.delivery_tag,
            BasicNackOptions {
                multiple: false,
                requeue: true,
            },
        ),
    )
    .await
    .expect("basic.nack");
    let again = consumer.next().await;
    assert_eq!((body(&again), again.redelivered), ("m0", true));
    assert_ne!(again.delivery_tag, first.delivery_tag, "a new delivery tag");
    ack(&cch, again.delivery_tag, false).await;
    let next = consumer.next().await;
    assert_eq!((body(&next), next.redelivered), ("m1", false));
}

#[tokio::test]
async fn nack_multiple_without_requeue_drops_messages() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    publish_n(&ch, "q", 3).await;
    let _ = get(&ch, "q").await.expect("m0");
    let m1 = get(&ch, "q").await.expect("m1");
    within(
        "basic.nack",
        ch.basic_nack(
            m1.delivery.delivery_tag,
            BasicNackOptions {
                multiple: true,
                requeue: false,
            },
        ),
    )
    .await
    .expect("basic.nack");
    sync(&ch).await.expect("nack accepted");
    assert_eq!(drain(&ch, "q").await, ["m2"]);
}

#[tokio::test]
async fn reject_without_requeue_drops_message() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    publish_n(&ch, "q", 2).await;
    let m0 = get(&ch, "q").await.expect("m0");
    within(
        "basic.reject",
        ch.basic_reject(
            m0.delivery.delivery_tag,
            BasicRejectOptions { requeue: false },
        ),
    )
    .await
    .expect("basic.reject");
    sync(&ch).await.expect("reject accepted");
    assert_eq!(drain(&ch, "q").await, ["m1"]);
}

#[tokio::test]
async fn nack_multiple_with_requeue_restores_original_order() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let cch = open_channel(&conn).await;
    let mut consumer = consume_acked(&cch, "q", "c").await;
    publish_n(&ch, "q", 4).await;
    let got = consumer.take(4).await;
    // Ack the second, then requeue everything else at once.
    ack(&cch, got[1].delivery_tag, false).await;
    within(
        "basic.cancel-ok",
        cch.basic_cancel("c".into(), BasicCancelOptions::default()),
    )
    .await
    .expect("basic.cancel");
    within(
        "basic.nack",
        cch.basic_nack(
            got[3].delivery_tag,
            BasicNackOptions {
                multiple: true,
                requeue: true,
            },
        ),
    )
    .await
    .expect("basic.nack");
    sync(&cch).await.expect("nack accepted");
    assert_eq!(drain(&ch, "q").await, ["m0", "m2", "m3"]);
}

#[tokio::test]
async fn ack_after_queue_deletion_is_accepted() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    publish_n(&ch, "q", 2).await;
    let m = get(&ch, "q").await.expect("m0");
    let other = open_channel(&conn).await;
    let deleted = within(
        "queue.delete-ok",
        other.queue_delete("q".into(), QueueDeleteOptions::default()),
    )
    .await
    .expect("queue.delete");
    assert_eq!(deleted, 1, "delete-ok counts the ready messages only");
    ack(&ch, m.delivery.delivery_tag, false).await;
    sync(&ch)
        .await
        .expect("the delivery tag is still valid on the channel");
}

#[tokio::test]
async fn purge_leaves_unacked_messages_to_be_requeued() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    publish_n(&ch, "q", 3).await;
    let m0 = get(&ch, "q").await.expect("m0");
    let purged = within(
        "queue.purge-ok",
        ch.queue_purge("q".into(), Default::default()),
    )
    .await
    .expect("queue.purge");
    assert_eq!(purged, 2);
    within(
        "basic.reject",
        ch.basic_reject(
            m0.delivery.delivery_tag,
            BasicRejectOptions { requeue: true },
        ),
    )
    .await
    .expect("basic.reject");
    assert_eq!(drain(&ch, "q").await, ["m0"]);
}

#[tokio::test]
async fn message_expired_while_unacked_is_dropped_when_requeued() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    within(
        "queue.declare-ok",
        ch.queue_declare(
            "ttl".into(),
            Default::default(),
            table(&[("x-message-ttl", AMQPValue::LongInt(200))]),
        ),
    )
    .await
    .expect("queue.declare");
    publish(&ch, "", "ttl", b"old").await;
    let m = get(&ch, "ttl").await.expect("fresh enough");
    tokio::time::sleep(Duration::from_millis(400)).await;
    within(
        "basic.reject",
        ch.basic_reject(
            m.delivery.delivery_tag,
            BasicRejectOptions { requeue: true },
        ),
    )
    .await
    .expect("basic.reject");
    assert!(
        drain(&ch, "ttl").await.is_empty(),
        "the message keeps its expiry and is gone"
    );
}

#[tokio::test]
async fn ack_of_unknown_delivery_tag_closes_channel_with_406() {
    let broker = TestBroker::start();
    let mut w = watched_channel(&broker).await;
    w.ch.basic_ack(BasicAckArguments::new(99, false))
        .await
        .expect("basic.ack is sent");
    w.expect_channel_close(406, "PRECONDITION_FAILED - unknown delivery tag 99")
        .await;
    assert!(w.conn.is_open(), "a channel error only");
}

#[tokio::test]
async fn double_ack_closes_channel_with_406() {
    let broker = TestBroker::start();
    let mut w = watched_channel(&broker).await;
    w.declare_queue("q").await;
    w.publish(AProps::default(), "", "q", b"once").await;
    let tag = w.get_tag("q").await;
    for _ in 0..2 {
        w.ch.basic_ack(BasicAckArguments::new(tag, false))
            .await
            .expect("basic.ack is sent");
    }
    w.expect_channel_close(406, "PRECONDITION_FAILED - unknown delivery tag 1")
        .await;
}

#[tokio::test]
async fn reject_of_unknown_delivery_tag_closes_channel_with_406() {
    let broker = TestBroker::start();
    let mut w = watched_channel(&broker).await;
    w.ch.basic_reject(BasicRejectArguments::new(99, true))
        .await
        .expect("basic.reject is sent");
    w.expect_channel_close(406, "PRECONDITION_FAILED - unknown delivery tag 99")
        .await;
}

#[tokio::test]
async fn nack_of_unknown_delivery_tag_closes_channel_with_406() {
    let broker = TestBroker::start();
    let mut w = watched_channel(&broker).await;
    w.ch.basic_nack(BasicNackArguments::new(99, false, true))
        .await
        .expect("basic.nack is sent");
    w.expect_channel_close(406, "PRECONDITION_FAILED - unknown delivery tag 99")
        .await;
}

#[tokio::test]
async fn ack_multiple_beyond_outstanding_tags_closes_channel_with_406() {
    let broker = TestBroker::start();
    let mut w = watched_channel(&broker).await;
    w.declare_queue("q").await;
    w.publish(AProps::default(), "", "q", b"m").await;
    let _tag = w.get_tag("q").await;
    w.ch.basic_ack(BasicAckArguments::new(99, true))
        .await
        .expect("basic.ack is sent");
    w.expect_channel_close(406, "PRECONDITION_FAILED - unknown delivery tag 99")
        .await;
}

#[tokio::test]
async fn ack_of_tag_zero_without_multiple_closes_channel_with_406() {
    let broker = TestBroker::start();
    let mut w = watched_channel(&broker).await;
    w.ch.basic_ack(BasicAckArguments::new(0, false))
        .await
        .expect("basic.ack is sent");
    w.expect_channel_close(406, "PRECONDITION_FAILED - unknown delivery tag 0")
        .await;
}

// ---------------------------------------------------------------------------------------------
// basic.get

#[tokio::test]
async fn basic_get_reports_remaining_message_count_and_get_empty() {
    let broker = TestBroker::start();
    let conn = connect(&broker).await;
    let ch = confirm_channel(&conn).await;
    declare_queue(&ch, "q").await;
    publish_n(&ch, "q", 3).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let m = get(&ch, "q").await.expect("basic.get-ok");
        seen.push((
            String::from_utf8(m.delivery.data.clone()).unwrap(),
            m.delivery.delivery_tag,
            m.message_count,
        ));
    }
    assert_eq!(
        seen,
        [
            ("m0".to_string(), 1, 2),
            ("m1".to_string(), 2, 1),
            ("m2".to_string(), 3, 0)
        ]
    );
    assert!(get(&ch, "q").await.is_none(), "basic.get-empty");
    ack(&ch, 3, true).await;
    sync(&ch).await.expect("acks accepted");
}

#[tokio::test]
async fn basic_get_with_no_ack_removes_message() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    publish(&ch, "", "q", b"m").await;
    let m = within(
        "basic.get-ok",
        ch.basic_get("q".into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .expect("basic.get")
    .expect("a message");
    assert_eq!(m.delivery.data, b"m");
    within("channel.close", ch.close(200, "done".into()))
        .await
        .expect("channel.close");
    let ch2 = open_channel(&conn).await;
    assert_eq!(message_count(&ch2, "q").await, 0, "not requeued");
}

#[tokio::test]
async fn basic_get_on_missing_queue_closes_channel_with_404() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (_conn, ch) = connect_channel(&broker).await;
    assert_closed_with(
        within(
            "basic.get",
            ch.basic_get("p_missing".into(), BasicGetOptions::default()),
        )
        .await,
        404,
        &format!("NOT_FOUND - no queue 'p_missing' in vhost '{vh}'"),
    );
}

// ---------------------------------------------------------------------------------------------
// recover and requeue on close

#[tokio::test]
async fn recover_with_requeue_redelivers_unacked_messages() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let cch = open_channel(&conn).await;
    let mut consumer = consume_acked(&cch, "q", "c17").await;
    publish_n(&ch, "q", 2).await;
    let first = consumer.take(2).await;
    assert_eq!(
        first.iter().map(|d| d.delivery_tag).collect::<Vec<_>>(),
        [1, 2]
    );
    within(
        "basic.recover-ok",
        cch.basic_recover(BasicRecoverOptions { requeue: true }),
    )
    .await
    .expect("basic.recover");
    let again = consumer.take(2).await;
    assert_eq!(bodies(&again), ["m0", "m1"]);
    assert!(again.iter().all(|d| d.redelivered), "redelivered=true");
    assert_eq!(
        again.iter().map(|d| d.delivery_tag).collect::<Vec<_>>(),
        [3, 4],
        "new delivery tags"
    );
    // The old tags are gone; the new ones work.
    ack(&cch, 4, true).await;
    sync(&cch).await.expect("acks of the new tags");
    consumer.assert_idle().await;
}

#[tokio::test]
async fn recover_async_without_requeue_closes_connection_with_540() {
    let broker = TestBroker::start();
    let (mut raw, _) = common::raw::Raw::open(&broker, 0).await;
    raw.channel_open(1).await;
    assert_eq!(raw.recv_non_heartbeat().await.method(), Some((20, 11)));
    raw.send_method(1, 60, 100, &[0]).await; // basic.recover-async requeue=false
    let close = raw.recv_non_heartbeat().await;
    assert_eq!(close.channel, 0, "a connection error");
    assert_eq!(
        close.close(),
        Some((540, "NOT_IMPLEMENTED - requeue=false".to_string(), 60, 100))
    );
}

#[tokio::test]
async fn channel_flow_inactive_closes_connection_with_540() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    let active = within(
        "channel.flow-ok",
        ch.channel_flow(lapin::options::ChannelFlowOptions { active: true }),
    )
    .await
    .expect("channel.flow active=true");
    assert!(active);
    assert_closed_with(
        within(
            "channel.flow",
            ch.channel_flow(lapin::options::ChannelFlowOptions { active: false }),
        )
        .await,
        540,
        "NOT_IMPLEMENTED - active=false",
    );
}

#[tokio::test]
async fn recover_without_requeue_closes_connection_with_540() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    let result = within(
        "basic.recover",
        ch.basic_recover(BasicRecoverOptions { requeue: false }),
    )
    .await;
    assert_closed_with(result, 540, "NOT_IMPLEMENTED - requeue=false");
    for _ in 0..50 {
        if !conn.status().connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!conn.status().connected(), "540 closes the connection");
}

#[tokio::test]
async fn unacked_messages_are_requeued_when_channel_closes() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let cch = open_channel(&conn).await;
    let mut consumer = consume_acked(&cch, "q", "c").await;
    publish_n(&ch, "q", 3).await;
    let got = consumer.take(3).await;
    ack(&cch, got[1].delivery_tag, false).await;
    within("channel.close", cch.close(200, "done".into()))
        .await
        .expect("channel.close");

    let mut seen = Vec::new();
    while let Some(m) = get(&ch, "q").await {
        seen.push((
            String::from_utf8(m.delivery.data.clone()).unwrap(),
            m.delivery.redelivered,
        ));
    }
    assert_eq!(
        seen,
        [("m0".to_string(), true), ("m2".to_string(), true)],
        "the unacked ones, in order, marked redelivered"
    );
}

#[tokio::test]
async fn unacked_messages_are_requeued_when_connection_closes() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let (consumer_conn, cch) = connect_channel(&broker).await;
    let mut consumer = consume_acked(&cch, "q", "c").await;
    publish_n(&ch, "q", 3).await;
    let got = consumer.take(3).await;
    ack(&cch, got[0].delivery_tag, false).await;
    sync(&cch).await.expect("ack accepted");
    within("connection.close", consumer_conn.close(200, "bye".into()))
        .await
        .expect("connection.close");

    let mut seen = Vec::new();
    for _ in 0..50 {
        if message_count(&ch, "q").await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while let Some(m) = get(&ch, "q").await {
        seen.push((
            String::from_utf8(m.delivery.data.clone()).unwrap(),
            m.delivery.redelivered,
        ));
    }
    assert_eq!(seen, [("m1".to_string(), true), ("m2".to_string(), true)]);
}

#[tokio::test]
async fn requeued_messages_go_to_another_consumer() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let ch_a = open_channel(&conn).await;
    let mut a = consume_acked(&ch_a, "q", "a").await;
    publish(&ch, "", "q", b"hot-potato").await;
    let first = a.next().await;
    assert!(!first.redelivered);
    let ch_b = open_channel(&conn).await;
    let mut b = consume_acked(&ch_b, "q", "b").await;
    within("channel.close", ch_a.close(200, "done".into()))
        .await
        .expect("channel.close");
    let second = b.next().await;
    assert_eq!(body(&second), "hot-potato");
    assert!(second.redelivered);
}

#[tokio::test]
async fn consumer_gets_basic_cancel_when_its_queue_is_deleted() {
    let broker = TestBroker::start();
    let conn = amqprs_connect(&broker).await;
    let ch = conn.open_channel(None).await.expect("channel.open");
    let (recorder, mut notices) = Recorder::new();
    ch.register_callback(recorder).await.expect("callback");
    ch.queue_declare(QueueDeclareArguments::new("doomed"))
        .await
        .expect("queue.declare");
    let (tag, _rx) = ch
        .basic_consume_rx(amqprs::channel::BasicConsumeArguments::new(
            "doomed", "victim",
        ))
        .await
        .expect("basic.consume");
    assert_eq!(tag, "victim");

    // Deleted from another connection.
    let (_other, other_ch) = connect_channel(&broker).await;
    within(
        "queue.delete-ok",
        other_ch.queue_delete("doomed".into(), QueueDeleteOptions::default()),
    )
    .await
    .expect("queue.delete");

    match next_notice(&mut notices).await {
        Notice::Cancel(tag) => assert_eq!(tag, "victim"),
        other => panic!("expected basic.cancel, got {other:?}"),
    }
    // The channel stays open.
    ch.queue_declare(QueueDeclareArguments::new("alive"))
        .await
        .expect("the channel survives the cancel");
    conn.close().await.expect("connection.close");
}

#[tokio::test]
async fn lapin_consumer_ends_when_its_queue_is_deleted() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "doomed").await;
    let cch = open_channel(&conn).await;
    let mut consumer = consume_acked(&cch, "doomed", "victim").await;
    within(
        "queue.delete-ok",
        ch.queue_delete("doomed".into(), QueueDeleteOptions::default()),
    )
    .await
    .expect("queue.delete");
    consumer.cancelled().await;
    sync(&cch).await.expect("consumer channel still open");
}

// ---------------------------------------------------------------------------------------------
// sizes

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 11)) as u8)
        .collect()
}

fn matches_pattern(data: &[u8]) -> bool {
    data.iter()
        .enumerate()
        .all(|(i, b)| *b == (i.wrapping_mul(31) ^ (i >> 11)) as u8)
}

#[tokio::test]
async fn empty_message_round_trips() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let cch = open_channel(&conn).await;
    let mut consumer = consume_acked(&cch, "q", "c").await;
    publish_with(
        &ch,
        "",
        "q",
        b"",
        BasicProperties::default().with_message_id("empty".into()),
    )
    .await;
    publish(&ch, "", "q", b"next").await;
    let d = consumer.next().await;
    assert!(d.data.is_empty());
    assert_eq!(
        d.properties.message_id().as_ref().map(ShortString::as_str),
        Some("empty")
    );
    assert_eq!(body(&consumer.next().await), "next");
    publish(&ch, "", "q", b"").await;
    ack(&cch, 2, true).await;
    let d = consumer.next().await;
    assert!(d.data.is_empty());
}

#[tokio::test]
async fn one_mib_message_round_trips() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    let cch = open_channel(&conn).await;
    let mut consumer = consume_acked(&cch, "q", "c").await;
    let data = pattern(1 << 20);
    publish(&ch, "", "q", &data).await;
    publish(&ch, "", "q", b"after").await;
    let d = consumer.next().await;
    assert_eq!(d.data.len(), 1 << 20);
    assert!(d.data == data, "1 MiB body intact");
    assert_eq!(body(&consumer.next().await), "after");

    // And through basic.get too.
    within(
        "basic.cancel",
        cch.basic_cancel("c".into(), Default::default()),
    )
    .await
    .expect("basic.cancel");
    publish(&ch, "", "q", &data).await;
    let got = get_body(&ch, "q").await.expect("the 1 MiB message");
    assert!(got == data, "1 MiB body intact via basic.get");
}

#[tokio::test]
async fn max_size_128_mib_message_round_trips() {
    const LEN: usize = 128 << 20;
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "big").await;
    {
        let data = pattern(LEN);
        tokio::time::timeout(
            Duration::from_secs(60),
            ch.basic_publish(
                "".into(),
                "big".into(),
                BasicPublishOptions::default(),
                &data,
                BasicProperties::default(),
            ),
        )
        .await
        .expect("128 MiB published in time")
        .expect("basic.publish");
    }
    let got = tokio::time::timeout(
        Duration::from_secs(60),
        ch.basic_get("big".into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .expect("128 MiB fetched in time")
    .expect("basic.get")
    .expect("the 128 MiB message");
    assert_eq!(got.delivery.data.len(), LEN);
    assert!(matches_pattern(&got.delivery.data), "128 MiB body intact");
}

#[tokio::test]
async fn message_above_max_size_closes_channel_with_406() {
    let config = rmqd_broker::BrokerConfig {
        max_message_size: 1024,
        ..Default::default()
    };
    let broker = TestBroker::start_with(config, |_| {});
    let mut w = watched_channel(&broker).await;
    w.declare_queue("q").await;
    w.publish(AProps::default(), "", "q", &[7u8; 1024]).await;
    w.publish(AProps::default(), "", "q", &[7u8; 1025]).await;
    w.expect_channel_close(
        406,
        "PRECONDITION_FAILED - message size 1025 is larger than configured max size 1024",
    )
    .await;
    let (_conn, ch2) = connect_channel(&broker).await;
    assert_eq!(
        get_body(&ch2, "q").await.map(|b| b.len()),
        Some(1024),
        "a message of exactly the limit is accepted"
    );
}

#[tokio::test]
async fn qos_with_prefetch_size_closes_connection_with_540() {
    let broker = TestBroker::start();
    let conn = amqprs_connect(&broker).await;
    let (recorder, mut notices) = Recorder::new();
    conn.register_callback(recorder).await.expect("callback");
    let ch = conn.open_channel(None).await.expect("channel.open");
    // amqprs waits for a qos-ok that never comes; the connection.close is what matters.
    let qos = tokio::spawn(async move {
        let _ = ch.basic_qos(BasicQosArguments::new(1000, 0, false)).await;
    });
    match next_notice(&mut notices).await {
        Notice::ConnectionClose(code, text) => assert_eq!(
            (code, text.as_str()),
            (540, "NOT_IMPLEMENTED - prefetch_size!=0 (1000)")
        ),
        other => panic!("expected connection.close, got {other:?}"),
    }
    qos.abort();
}
