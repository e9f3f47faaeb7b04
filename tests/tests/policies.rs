//! Policies take effect on the queue features that support them, as in RabbitMQ: a policy's
//! `message-ttl` and `expires` apply to queues declared after it and to queues that already
//! exist, the stricter of policy and `x-` argument wins, and clearing the policy lifts it.

mod common;

use std::time::Duration;

use common::*;
use lapin::options::QueueDeclareOptions;
use lapin::types::AMQPValue;
use rmqd_broker::policy::{ApplyTo, Policy};

fn set_policy(broker: &TestBroker, name: &str, pattern: &str, definition: &str) {
    let policy =
        Policy::from_json(name, pattern, ApplyTo::Queues, definition, 0).expect("a valid policy");
    broker
        .broker
        .vhost(b"/")
        .expect("default vhost")
        .set_policy(policy);
}

/// Publishes one message to `queue` and reports whether it is still there after `wait`.
async fn survives(ch: &lapin::Channel, queue: &str, wait: Duration) -> bool {
    publish(ch, "", queue, b"m").await;
    tokio::time::sleep(wait).await;
    get_body(ch, queue).await.is_some()
}

#[tokio::test]
async fn a_message_ttl_policy_expires_messages_of_matching_queues_only() {
    let broker = TestBroker::start();
    set_policy(&broker, "short-lived", "^tmp\\.", r#"{"message-ttl":50}"#);
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "tmp.jobs").await;
    declare_queue(&ch, "jobs").await;
    assert!(!survives(&ch, "tmp.jobs", Duration::from_millis(300)).await);
    assert!(survives(&ch, "jobs", Duration::from_millis(300)).await);
}

#[tokio::test]
async fn a_policy_applies_to_a_queue_that_already_exists_and_clearing_it_lifts_it() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "tmp.existing").await;
    assert!(survives(&ch, "tmp.existing", Duration::from_millis(300)).await);

    set_policy(&broker, "short-lived", "^tmp\\.", r#"{"message-ttl":50}"#);
    assert!(!survives(&ch, "tmp.existing", Duration::from_millis(300)).await);

    assert!(
        broker
            .broker
            .vhost(b"/")
            .unwrap()
            .clear_policy("short-lived")
    );
    assert!(survives(&ch, "tmp.existing", Duration::from_millis(300)).await);
}

#[tokio::test]
async fn the_stricter_of_argument_and_policy_wins() {
    let broker = TestBroker::start();
    set_policy(&broker, "short-lived", "^tmp\\.", r#"{"message-ttl":50}"#);
    let (_conn, ch) = connect_channel(&broker).await;
    let long = table(&[("x-message-ttl", AMQPValue::LongLongInt(60_000))]);
    ch.queue_declare("tmp.long".into(), QueueDeclareOptions::default(), long)
        .await
        .expect("declare");
    assert!(!survives(&ch, "tmp.long", Duration::from_millis(300)).await);

    // A policy looser than the argument leaves the argument in force.
    set_policy(
        &broker,
        "short-lived",
        "^tmp\\.",
        r#"{"message-ttl":60000}"#,
    );
    let short = table(&[("x-message-ttl", AMQPValue::LongLongInt(50))]);
    ch.queue_declare("tmp.short".into(), QueueDeclareOptions::default(), short)
        .await
        .expect("declare");
    assert!(!survives(&ch, "tmp.short", Duration::from_millis(300)).await);
}

#[tokio::test]
async fn the_highest_priority_policy_is_the_one_that_applies() {
    let broker = TestBroker::start();
    let vhost = broker.broker.vhost(b"/").unwrap();
    let policy = |name, priority, ttl: u64| {
        Policy::from_json(
            name,
            "^tmp\\.",
            ApplyTo::Queues,
            &format!(r#"{{"message-ttl":{ttl}}}"#),
            priority,
        )
        .unwrap()
    };
    vhost.set_policy(policy("low", 0, 50));
    vhost.set_policy(policy("high", 10, 60_000));
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "tmp.q").await;
    assert!(
        survives(&ch, "tmp.q", Duration::from_millis(300)).await,
        "only the higher-priority policy applies, not both"
    );
    assert_eq!(vhost.queues()[0].policy_name().as_deref(), Some("high"));
}

#[tokio::test]
async fn an_expires_policy_deletes_an_unused_queue() {
    let broker = TestBroker::start();
    set_policy(&broker, "cleanup", "^tmp\\.", r#"{"expires":100}"#);
    let (_conn, ch) = connect_channel(&broker).await;
    declare_queue(&ch, "tmp.abandoned").await;
    declare_queue(&ch, "kept").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_c, probe) = connect_channel(&broker).await;
        if passive_declare(&probe, "tmp.abandoned").await.is_err() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queue was not deleted by its policy's expiry"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    passive_declare(&ch, "kept")
        .await
        .expect("other queues stay");
}
