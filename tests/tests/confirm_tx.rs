//! Publisher confirms and transactions.

mod common;

use std::collections::BTreeSet;

use amqprs::BasicProperties as AProps;
use amqprs::channel::{BasicPublishArguments, ConfirmSelectArguments, QueueDeclareArguments};
use lapin::options::{BasicAckOptions, BasicPublishOptions};
use lapin::{BasicProperties, Channel};

use common::*;

async fn tx_select(ch: &Channel) {
    within("tx.select-ok", ch.tx_select())
        .await
        .expect("tx.select");
}

async fn tx_commit(ch: &Channel) {
    within("tx.commit-ok", ch.tx_commit())
        .await
        .expect("tx.commit");
}

async fn tx_rollback(ch: &Channel) {
    within("tx.rollback-ok", ch.tx_rollback())
        .await
        .expect("tx.rollback");
}

async fn confirm_select(ch: &Channel) {
    within("confirm.select-ok", ch.confirm_select(Default::default()))
        .await
        .expect("confirm.select");
}

// ---------------------------------------------------------------------------------------------
// confirms

#[tokio::test]
async fn publishes_in_confirm_mode_are_acked() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "q").await;
    confirm_select(&ch).await;
    for i in 0..3 {
        let confirm = within(
            "basic.publish",
            ch.basic_publish(
                "".into(),
                "q".into(),
                BasicPublishOptions::default(),
                format!("m{i}").as_bytes(),
                BasicProperties::default(),
            ),
        )
        .await
        .expect("basic.publish");
        let confirmation = within("basic.ack", confirm).await.expect("confirmation");
        assert!(confirmation.is_ack(), "message {i} acked: {confirmation:?}");
    }
    assert_eq!(drain(&ch, "q").await, ["m0", "m1", "m2"]);
}

#[tokio::test]
async fn confirms_cover_every_publish_in_order_possibly_with_multiple() {
    const N: u64 = 500;
    let broker = TestBroker::start();
    let conn = amqprs_connect(&broker).await;
    let ch = conn.open_channel(None).await.expect("channel.open");
    let (recorder, mut notices) = Recorder::new();
    ch.register_callback(recorder).await.expect("callback");
    ch.queue_declare(QueueDeclareArguments::new("q"))
        .await
        .expect("queue.declare");
    ch.confirm_select(ConfirmSelectArguments::default())
        .await
        .expect("confirm.select");
    for i in 0..N {
        ch.basic_publish(
            AProps::default(),
            i.to_string().into_bytes(),
            BasicPublishArguments::new("", "q"),
        )
        .await
        .expect("basic.publish");
    }

    // Every sequence number 1..=N is acked exactly once, by a single or a multiple ack, and the
    // acks move forward.
    let mut acked = BTreeSet::new();
    let mut highest = 0;
    while highest < N {
        match next_notice(&mut notices).await {
            Notice::Ack(tag, multiple) => {
                assert!(tag > highest || !multiple, "multiple acks move forward");
                let covered: Vec<u64> = if multiple {
                    (1..=tag).filter(|t| !acked.contains(t)).collect()
                } else {
                    vec![tag]
                };
                assert!(
                    !covered.is_empty(),
                    "ack {tag} (multiple={multiple}) covers nothing new"
                );
                for t in covered {
                    assert!(acked.insert(t), "sequence number {t} acked twice");
                }
                highest = highest.max(tag);
            }
            other => panic!("expected basic.ack, got {other:?}"),
        }
    }
    assert_eq!(acked, (1..=N).collect::<BTreeSet<_>>());
    conn.close().await.expect("connection.close");
}

#[tokio::test]
async fn unroutable_publish_is_still_acked() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    confirm_select(&ch).await;
    let confirm = within(
        "basic.publish",
        ch.basic_publish(
            "amq.direct".into(),
            "nowhere".into(),
            BasicPublishOptions::default(),
            b"dropped",
            BasicProperties::default(),
        ),
    )
    .await
    .expect("basic.publish");
    let confirmation = within("basic.ack", confirm).await.expect("confirmation");
    assert!(confirmation.is_ack());
}

#[tokio::test]
async fn mandatory_unroutable_publish_is_returned_then_acked() {
    let broker = TestBroker::start();
    let conn = amqprs_connect(&broker).await;
    let ch = conn.open_channel(None).await.expect("channel.open");
    let (recorder, mut notices) = Recorder::new();
    ch.register_callback(recorder).await.expect("callback");
    ch.confirm_select(ConfirmSelectArguments::default())
        .await
        .expect("confirm.select");
    ch.basic_publish(
        AProps::default(),
        b"bounce".to_vec(),
        BasicPublishArguments::new("amq.direct", "nowhere")
            .mandatory(true)
            .finish(),
    )
    .await
    .expect("basic.publish");
    match next_notice(&mut notices).await {
        Notice::Return { code, text, .. } => assert_eq!((code, text.as_str()), (312, "NO_ROUTE")),
        other => panic!("expected basic.return first, got {other:?}"),
    }
    match next_notice(&mut notices).await {
        Notice::Ack(1, false) => {}
        other => panic!("expected basic.ack 1 after the return, got {other:?}"),
    }
    conn.close().await.expect("connection.close");
}

#[tokio::test]
async fn lapin_sees_returned_message_with_its_confirm() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    confirm_select(&ch).await;
    let confirm = within(
        "basic.publish",
        ch.basic_publish(
            "".into(),
            "no-such-queue".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"bounce",
            BasicProperties::default(),
        ),
    )
    .await
    .expect("basic.publish");
    let confirmation = within("basic.ack", confirm).await.expect("confirmation");
    assert!(confirmation.is_ack());
    let returned = confirmation.take_message().expect("the returned message");
    assert_eq!(returned.reply_code, 312);
    assert_eq!(returned.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(returned.delivery.routing_key.as_str(), "no-such-queue");
    assert_eq!(returned.delivery.data, b"bounce");
}

#[tokio::test]
async fn confirm_select_then_tx_select_fails_with_406() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    confirm_select(&ch).await;
    assert_closed_with(
        within("tx.select", ch.tx_select()).await,
        406,
        "PRECONDITION_FAILED - cannot switch from confirm to tx mode",
    );
}

// ---------------------------------------------------------------------------------------------
// transactions

#[tokio::test]
async fn tx_select_then_confirm_select_fails_with_406() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    tx_select(&ch).await;
    assert_closed_with(
        within("confirm.select", ch.confirm_select(Default::default())).await,
        406,
        "PRECONDITION_FAILED - cannot switch from tx to confirm mode",
    );
}

#[tokio::test]
async fn tx_commit_without_tx_select_fails_with_406() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    assert_closed_with(
        within("tx.commit", ch.tx_commit()).await,
        406,
        "PRECONDITION_FAILED - channel is not transactional",
    );
}

#[tokio::test]
async fn tx_rollback_without_tx_select_fails_with_406() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    assert_closed_with(
        within("tx.rollback", ch.tx_rollback()).await,
        406,
        "PRECONDITION_FAILED - channel is not transactional",
    );
}

#[tokio::test]
async fn tx_commit_makes_publishes_visible() {
    let broker = TestBroker::start();
    let (conn, observer) = connect_channel(&broker).await;
    declare_queue(&observer, "q").await;
    let ch = open_channel(&conn).await;
    tx_select(&ch).await;
    publish(&ch, "", "q", b"t1").await;
    publish(&ch, "", "q", b"t2").await;
    // A round trip on the tx channel so both publishes have surely arrived.
    declare_queue(&ch, "q").await;
    assert_eq!(
        message_count(&observer, "q").await,
        0,
        "not visible before commit"
    );
    tx_commit(&ch).await;
    assert_eq!(drain(&observer, "q").await, ["t1", "t2"]);
}

#[tokio::test]
async fn tx_rollback_discards_publishes() {
    let broker = TestBroker::start();
    let (conn, observer) = connect_channel(&broker).await;
    declare_queue(&observer, "q").await;
    let ch = open_channel(&conn).await;
    tx_select(&ch).await;
    publish(&ch, "", "q", b"discarded").await;
    tx_rollback(&ch).await;
    assert_eq!(message_count(&observer, "q").await, 0);

    // The channel stays transactional: the next transaction commits normally.
    publish(&ch, "", "q", b"kept").await;
    tx_commit(&ch).await;
    assert_eq!(drain(&observer, "q").await, ["kept"]);
}

#[tokio::test]
async fn uncommitted_publishes_are_discarded_when_channel_closes() {
    let broker = TestBroker::start();
    let (conn, observer) = connect_channel(&broker).await;
    declare_queue(&observer, "q").await;
    let ch = open_channel(&conn).await;
    tx_select(&ch).await;
    publish(&ch, "", "q", b"never").await;
    within("channel.close", ch.close(200, "bye".into()))
        .await
        .expect("channel.close");
    assert_eq!(message_count(&observer, "q").await, 0);
}

#[tokio::test]
async fn acks_in_tx_are_applied_only_at_commit() {
    let broker = TestBroker::start();
    let (conn, observer) = connect_channel(&broker).await;
    declare_queue(&observer, "q").await;
    publish(&observer, "", "q", b"a").await;
    publish(&observer, "", "q", b"b").await;

    let ch = open_channel(&conn).await;
    tx_select(&ch).await;
    let a = get(&ch, "q").await.expect("a");
    let b = get(&ch, "q").await.expect("b");
    within(
        "basic.ack",
        ch.basic_ack(a.delivery.delivery_tag, BasicAckOptions::default()),
    )
    .await
    .expect("basic.ack");
    within(
        "basic.ack",
        ch.basic_ack(b.delivery.delivery_tag, BasicAckOptions::default()),
    )
    .await
    .expect("basic.ack");
    // Rolled back: the acks are forgotten, the messages are still unacked on this channel and
    // come back when it closes.
    tx_rollback(&ch).await;
    within("channel.close", ch.close(200, "bye".into()))
        .await
        .expect("channel.close");
    assert_eq!(
        message_count(&observer, "q").await,
        2,
        "rolled-back acks did not count"
    );

    // Committed: the acks take effect and nothing comes back.
    let ch = open_channel(&conn).await;
    tx_select(&ch).await;
    let a = get(&ch, "q").await.expect("a again");
    assert!(a.delivery.redelivered);
    within(
        "basic.ack",
        ch.basic_ack(a.delivery.delivery_tag, BasicAckOptions::default()),
    )
    .await
    .expect("basic.ack");
    tx_commit(&ch).await;
    within("channel.close", ch.close(200, "bye".into()))
        .await
        .expect("channel.close");
    assert_eq!(drain(&observer, "q").await, ["b"]);
}

#[tokio::test]
async fn uncommitted_acks_leave_messages_unacked() {
    let broker = TestBroker::start();
    let (conn, observer) = connect_channel(&broker).await;
    declare_queue(&observer, "q").await;
    publish(&observer, "", "q", b"a").await;
    let ch = open_channel(&conn).await;
    tx_select(&ch).await;
    let a = get(&ch, "q").await.expect("a");
    within(
        "basic.ack",
        ch.basic_ack(a.delivery.delivery_tag, BasicAckOptions::default()),
    )
    .await
    .expect("basic.ack");
    // Before commit the message is neither ready nor gone: closing the channel requeues it.
    assert_eq!(message_count(&observer, "q").await, 0);
    within("channel.close", ch.close(200, "bye".into()))
        .await
        .expect("channel.close");
    assert_eq!(drain(&observer, "q").await, ["a"]);
}

#[tokio::test]
async fn tx_commit_applies_publishes_and_acks_together() {
    let broker = TestBroker::start();
    let (conn, observer) = connect_channel(&broker).await;
    declare_queue(&observer, "in").await;
    declare_queue(&observer, "out").await;
    publish(&observer, "", "in", b"job").await;

    let ch = open_channel(&conn).await;
    tx_select(&ch).await;
    let job = get(&ch, "in").await.expect("job");
    publish(&ch, "", "out", b"result").await;
    within(
        "basic.ack",
        ch.basic_ack(job.delivery.delivery_tag, BasicAckOptions::default()),
    )
    .await
    .expect("basic.ack");
    tx_commit(&ch).await;
    assert_eq!(drain(&observer, "out").await, ["result"]);
    within("channel.close", ch.close(200, "bye".into()))
        .await
        .expect("channel.close");
    assert_eq!(message_count(&observer, "in").await, 0, "the job was acked");
}

#[tokio::test]
async fn mandatory_unroutable_publish_in_tx_is_returned_at_commit() {
    let broker = TestBroker::start();
    let conn = amqprs_connect(&broker).await;
    let ch = conn.open_channel(None).await.expect("channel.open");
    let (recorder, mut notices) = Recorder::new();
    ch.register_callback(recorder).await.expect("callback");
    ch.tx_select().await.expect("tx.select");
    ch.basic_publish(
        AProps::default(),
        b"bounce".to_vec(),
        BasicPublishArguments::new("amq.direct", "nowhere")
            .mandatory(true)
            .finish(),
    )
    .await
    .expect("basic.publish");
    if let Ok(Some(notice)) = tokio::time::timeout(QUIET, notices.recv()).await {
        panic!("nothing is routed, or returned, before commit; got {notice:?}");
    }
    ch.tx_commit().await.expect("tx.commit");
    match next_notice(&mut notices).await {
        Notice::Return { code, text, .. } => assert_eq!((code, text.as_str()), (312, "NO_ROUTE")),
        other => panic!("expected basic.return, got {other:?}"),
    }
    conn.close().await.expect("connection.close");
}

#[tokio::test]
async fn mandatory_unroutable_publish_in_rolled_back_tx_is_not_returned() {
    let broker = TestBroker::start();
    let conn = amqprs_connect(&broker).await;
    let ch = conn.open_channel(None).await.expect("channel.open");
    let (recorder, mut notices) = Recorder::new();
    ch.register_callback(recorder).await.expect("callback");
    ch.tx_select().await.expect("tx.select");
    ch.basic_publish(
        AProps::default(),
        b"bounce".to_vec(),
        BasicPublishArguments::new("amq.direct", "nowhere")
            .mandatory(true)
            .finish(),
    )
    .await
    .expect("basic.publish");
    ch.tx_rollback().await.expect("tx.rollback");
    if let Ok(Some(notice)) = tokio::time::timeout(QUIET, notices.recv()).await {
        panic!("a rolled-back publish is not returned; got {notice:?}");
    }
    conn.close().await.expect("connection.close");
}
