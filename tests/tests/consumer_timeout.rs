//! RabbitMQ's `consumer_timeout`: a channel that holds a delivery unacked for longer is closed
//! with 406 PRECONDITION_FAILED, and the message goes back to its queue for another consumer.

mod common;

use std::time::Duration;

use amqprs::BasicProperties as AProps;
use amqprs::channel::{BasicGetArguments, BasicPublishArguments, QueueDeclareArguments};
use common::*;
use lapin::options::BasicAckOptions;
use rmqd_broker::BrokerConfig;

const TIMEOUT: Duration = Duration::from_millis(300);

fn broker() -> TestBroker {
    TestBroker::start_with(
        BrokerConfig {
            consumer_timeout: Some(TIMEOUT),
            ..BrokerConfig::default()
        },
        |_| {},
    )
}

const TIMED_OUT: &str = "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. \
                         Timeout value used: 300 ms. This timeout value can be configured, see \
                         consumers doc guide to learn more";

#[tokio::test]
async fn an_unacked_delivery_past_the_timeout_closes_the_channel_and_is_redelivered() {
    let broker = broker();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "work").await;
    publish(&ch, "", "work", b"job").await;
    let mut slow = consume_acked(&ch, "work", "slow").await;
    let first = slow.next().await;
    assert!(!first.redelivered);

    match within("the channel's close", slow.events.recv()).await {
        Some(Event::Error(err)) => assert_eq!(
            amqp_error(&err),
            Some((406, TIMED_OUT.to_string())),
            "the consumer learns why its channel closed"
        ),
        other => panic!("expected the channel to close, got {other:?}"),
    }

    let (_conn2, other) = connect_channel(&broker).await;
    let mut fresh = consume_acked(&other, "work", "fresh").await;
    let again = fresh.next().await;
    assert_eq!(body(&again), "job");
    assert!(
        again.redelivered,
        "the timed-out delivery went back to the queue"
    );
}

#[tokio::test]
async fn acking_in_time_keeps_the_channel_open() {
    let broker = broker();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "work").await;
    let mut consumer = consume_acked(&ch, "work", "prompt").await;
    // Each delivery is acked well within the timeout, over a span longer than it.
    for n in 0..4u8 {
        publish(&ch, "", "work", &[n]).await;
        let delivery = consumer.next().await;
        tokio::time::sleep(TIMEOUT / 3).await;
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
    tokio::time::sleep(TIMEOUT * 2).await;
    passive_declare(&ch, "work")
        .await
        .expect("the channel is still open");
}

#[tokio::test]
async fn a_basic_get_left_unacked_times_out_too() {
    let broker = broker();
    let conn = amqprs_connect(&broker).await;
    let ch = conn.open_channel(None).await.expect("channel.open");
    let (recorder, mut notices) = Recorder::new();
    ch.register_callback(recorder).await.expect("callback");
    ch.queue_declare(QueueDeclareArguments::new("work"))
        .await
        .expect("queue.declare");
    ch.basic_publish(
        AProps::default(),
        b"job".to_vec(),
        BasicPublishArguments::new("", "work"),
    )
    .await
    .expect("basic.publish");
    let got = ch
        .basic_get(BasicGetArguments::new("work"))
        .await
        .expect("basic.get");
    assert!(got.is_some());
    match next_notice(&mut notices).await {
        Notice::ChannelClose(code, text) => assert_eq!((code, text.as_str()), (406, TIMED_OUT)),
        other => panic!("expected channel.close, got {other:?}"),
    }
}
