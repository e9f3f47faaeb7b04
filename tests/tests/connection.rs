//! Connections and channels: the handshake, logins and vhosts, heartbeats, closing from either
//! side, and which errors close a channel and which close the whole connection.

mod common;

use std::time::Duration;

use amqprs::connection::Connection as AConnection;
use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use rmqd_broker::BrokerConfig;

use common::*;

#[tokio::test]
async fn handshake_reports_product_and_capabilities() {
    let broker = TestBroker::start();
    let conn = amqprs_connect(&broker).await;
    let props = conn.server_properties();
    assert!(
        !props.product().is_empty(),
        "server_properties has a product"
    );
    let caps = props.capabilities();
    assert!(caps.publisher_confirms(), "publisher_confirms");
    assert!(
        caps.exchange_exchange_bindings(),
        "exchange_exchange_bindings"
    );
    assert!(caps.basic_nack(), "basic.nack");
    assert!(caps.consumer_cancel_notify(), "consumer_cancel_notify");
    assert!(caps.connection_blocked(), "connection.blocked");
    assert!(
        caps.authentication_failure_close(),
        "authentication_failure_close"
    );
    assert!(caps.per_consumer_qos(), "per_consumer_qos");
    conn.close().await.expect("connection.close");
}

#[tokio::test]
async fn handshake_negotiates_frame_max_and_channel_max() {
    let broker = TestBroker::start();
    let conn = amqprs_connect(&broker).await;
    assert_eq!(conn.frame_max(), 131072, "frame_max from connection.tune");
    assert_eq!(conn.channel_max(), 2047, "channel_max from connection.tune");
    conn.close().await.expect("connection.close");
}

#[tokio::test]
async fn wrong_password_is_refused_with_403_access_refused() {
    let broker = TestBroker::start();
    let url = url_for(&broker, "guest", "wrong", &vhost(&broker));
    // lapin announces authentication_failure_close, so the broker explains with a close.
    assert_closed_with(
        connect_url(&url).await,
        403,
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. \
         For details see the broker logfile.",
    );
}

#[tokio::test]
async fn unknown_user_is_refused_with_403_access_refused() {
    let broker = TestBroker::start();
    let url = url_for(&broker, "nobody", "guest", &vhost(&broker));
    assert_closed_with(
        connect_url(&url).await,
        403,
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. \
         For details see the broker logfile.",
    );
}

#[tokio::test]
async fn unknown_vhost_is_refused_with_530_not_allowed() {
    let broker = TestBroker::start();
    let url = url_for(&broker, "guest", "guest", "nope");
    assert_closed_with(
        connect_url(&url).await,
        530,
        "NOT_ALLOWED - vhost nope not found",
    );
}

#[tokio::test]
async fn second_user_logs_in_to_second_vhost() {
    let broker = TestBroker::start_with(BrokerConfig::default(), |broker| {
        broker.add_vhost("second");
        broker.users.add("alice", "s3cret");
        broker.users.grant("alice", "second");
    });
    let url = url_for(&broker, "alice", "s3cret", "second");
    let conn = connect_url(&url).await.expect("alice opens vhost second");
    assert_eq!(conn.status().vhost().as_str(), "second");
    assert_eq!(conn.status().username(), "alice");
    let ch = open_channel(&conn).await;
    declare_queue(&ch, "in-second").await;
    publish(&ch, "", "in-second", b"hello").await;
    assert_eq!(
        get_body(&ch, "in-second").await.as_deref(),
        Some(&b"hello"[..])
    );

    // The vhosts are separate: guest on "/" does not see the queue.
    let (_guest, guest_ch) = connect_channel(&broker).await;
    let missing = guest_ch
        .queue_declare(
            "in-second".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    assert_closed_with(
        missing,
        404,
        &format!(
            "NOT_FOUND - no queue 'in-second' in vhost '{}'",
            vhost(&broker)
        ),
    );
    conn.close(200, "bye".into())
        .await
        .expect("connection.close");
}

#[tokio::test]
async fn second_user_has_no_access_to_default_vhost() {
    let broker = TestBroker::start_with(BrokerConfig::default(), |broker| {
        broker.add_vhost("second");
        broker.users.add("alice", "s3cret");
        broker.users.grant("alice", "second");
    });
    let url = url_for(&broker, "alice", "s3cret", "/");
    assert_closed_with(
        connect_url(&url).await,
        530,
        "NOT_ALLOWED - access to vhost '/' refused for user 'alice'",
    );
}

#[tokio::test]
async fn heartbeat_is_negotiated_and_broker_keeps_idle_connection_alive() {
    let broker = TestBroker::start();
    let url = format!("{}?heartbeat=1", broker.url());
    let conn = connect_url(&url).await.expect("connect with heartbeat=1");
    assert_eq!(
        conn.configuration().heartbeat(),
        1,
        "the client's 1 s wins over the broker's 60 s"
    );
    // lapin drops the connection if it reads nothing for 2 heartbeat intervals: staying idle for
    // 3.5 s only works if the broker sends heartbeats.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        conn.status().connected(),
        "connection still open after 3.5 s idle: {:?}",
        conn.status()
    );
    let ch = open_channel(&conn).await;
    declare_queue(&ch, "after-idle").await;
    conn.close(200, "bye".into())
        .await
        .expect("connection.close");
}

#[tokio::test]
async fn heartbeat_is_negotiated_with_amqprs() {
    let broker = TestBroker::start();
    let mut args = amqprs_args(&broker, "guest", "guest", &vhost(&broker));
    args.heartbeat(1);
    let conn = within("amqprs connection", AConnection::open(&args))
        .await
        .expect("connect");
    assert_eq!(conn.heartbeat(), 1);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(conn.is_open(), "still open after 3.5 s idle");
    let ch = within("channel", conn.open_channel(None))
        .await
        .expect("channel.open after idle");
    ch.close().await.expect("channel.close");
    conn.close().await.expect("connection.close");
}

#[tokio::test]
async fn client_connection_close_is_acknowledged() {
    let broker = TestBroker::start();
    let (conn, _ch) = connect_channel(&broker).await;
    within("connection.close-ok", conn.close(200, "bye".into()))
        .await
        .expect("the broker answers connection.close with close-ok");
    // (lapin may flag the socket EOF right after close-ok as an error state; either way the
    // connection is no longer usable.)
    assert!(!conn.status().connected(), "{:?}", conn.status());
    // The broker forgets the connection.
    for _ in 0..50 {
        if broker.broker.connection_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(broker.broker.connection_count(), 0);
}

#[tokio::test]
async fn broker_connection_close_is_delivered_to_client() {
    let broker = TestBroker::start();
    let conn = amqprs_connect(&broker).await;
    let (recorder, mut notices) = Recorder::new();
    conn.register_callback(recorder).await.expect("callback");
    broker.broker.close_all("closed by test");
    match next_notice(&mut notices).await {
        Notice::ConnectionClose(code, text) => {
            assert_eq!(
                (code, text.as_str()),
                (320, "CONNECTION_FORCED - closed by test")
            );
        }
        other => panic!("expected connection.close, got {other:?}"),
    }
    for _ in 0..50 {
        if !conn.is_open() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!conn.is_open(), "amqprs sees the connection closed");
}

#[tokio::test]
async fn client_channel_close_keeps_connection_open() {
    let broker = TestBroker::start();
    let (conn, ch1) = connect_channel(&broker).await;
    let ch2 = open_channel(&conn).await;
    within("channel.close-ok", ch1.close(200, "done".into()))
        .await
        .expect("channel.close");
    declare_queue(&ch2, "still-works").await;
    assert!(conn.status().connected());
}

#[tokio::test]
async fn channel_error_closes_only_that_channel() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (conn, ch1) = connect_channel(&broker).await;
    let ch2 = open_channel(&conn).await;
    declare_queue(&ch2, "q").await;

    let missing = ch1
        .queue_declare(
            "missing".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    assert_closed_with(
        missing,
        404,
        &format!("NOT_FOUND - no queue 'missing' in vhost '{vh}'"),
    );

    // ch1 is gone; the connection, ch2 and new channels are not.
    assert!(
        ch1.queue_declare("q".into(), Default::default(), FieldTable::default())
            .await
            .is_err()
    );
    assert!(conn.status().connected());
    publish(&ch2, "", "q", b"m").await;
    assert_eq!(get_body(&ch2, "q").await.as_deref(), Some(&b"m"[..]));
    let ch3 = open_channel(&conn).await;
    assert_eq!(message_count(&ch3, "q").await, 0);
}

#[tokio::test]
async fn duplicate_consumer_tag_closes_connection_with_530() {
    let broker = TestBroker::start();
    let (conn, ch) = connect_channel(&broker).await;
    let other = open_channel(&conn).await;
    declare_queue(&ch, "q").await;
    let _first = consume(&ch, "q", "ctag", BasicConsumeOptions::default())
        .await
        .expect("first consumer");
    let second = consume(&ch, "q", "ctag", BasicConsumeOptions::default()).await;
    match second {
        Ok(_) => panic!("a duplicate consumer tag must be refused"),
        Err(err) => assert_eq!(
            amqp_error(&err),
            Some((
                530,
                "NOT_ALLOWED - attempt to reuse consumer tag 'ctag'".to_string()
            )),
            "{err:?}"
        ),
    }
    // A connection error: every channel goes with it.
    for _ in 0..50 {
        if !conn.status().connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!conn.status().connected(), "the connection is closed");
    assert!(
        other
            .queue_declare("q".into(), Default::default(), FieldTable::default())
            .await
            .is_err(),
        "other channels of the connection are closed too"
    );
    // The broker itself is fine.
    let (_conn2, ch2) = connect_channel(&broker).await;
    declare_queue(&ch2, "q").await;
}

// ---------------------------------------------------------------------------------------------
// At the frame level

use common::raw::{HEARTBEAT, Raw};

#[tokio::test]
async fn connection_tune_proposes_rabbitmq_defaults() {
    let broker = TestBroker::start();
    let (_raw, tune) = Raw::open(&broker, 0).await;
    assert_eq!(
        tune,
        (2047, 131072, 60),
        "channel_max, frame_max, heartbeat"
    );
}

#[tokio::test]
async fn broker_sends_heartbeat_frames_at_negotiated_interval() {
    let broker = TestBroker::start();
    let (mut raw, _) = Raw::open(&broker, 1).await;
    let mut heartbeats = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(3500);
    let mut next_ours = tokio::time::Instant::now();
    while tokio::time::Instant::now() < deadline {
        if tokio::time::Instant::now() >= next_ours {
            raw.send_heartbeat().await;
            next_ours += Duration::from_millis(500);
        }
        match raw.recv_within(Duration::from_millis(100)).await {
            Ok(Some(frame)) => {
                assert_eq!(
                    frame.kind, HEARTBEAT,
                    "only heartbeats on an idle connection"
                );
                assert_eq!(frame.channel, 0);
                assert!(frame.payload.is_empty());
                heartbeats += 1;
            }
            Ok(None) => panic!("the broker closed a connection that kept sending heartbeats"),
            Err(()) => {}
        }
    }
    assert!(
        (2..=8).contains(&heartbeats),
        "about one heartbeat a second for 3.5 s, got {heartbeats}"
    );
}

#[tokio::test]
async fn broker_closes_connection_when_client_heartbeats_stop() {
    let broker = TestBroker::start();
    let (mut raw, _) = Raw::open(&broker, 1).await;
    let started = tokio::time::Instant::now();
    // Silent from now on: after two missed intervals the broker gives up on us.
    loop {
        match raw.recv_within(Duration::from_secs(6)).await {
            Ok(Some(frame)) if frame.kind == HEARTBEAT => continue,
            Ok(Some(frame)) => panic!("unexpected frame {frame:?}"),
            Ok(None) => break,
            Err(()) => panic!("still open 6 s after the client went silent"),
        }
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1500),
        "closed too early: {elapsed:?}"
    );
}

#[tokio::test]
async fn wrong_protocol_header_is_answered_with_supported_header() {
    let broker = TestBroker::start();
    let mut raw = Raw::connect(&broker).await;
    raw.send_bytes(b"AMQP\x00\x00\x09\x02").await;
    let reply = raw
        .read_to_close(WAIT)
        .await
        .expect("the broker closes the socket");
    assert_eq!(reply, b"AMQP\x00\x00\x09\x01");
}

#[tokio::test]
async fn login_failure_without_capability_closes_socket_without_a_frame() {
    let broker = TestBroker::start();
    let mut raw = Raw::connect(&broker).await;
    raw.start("guest", "wrong", &[]).await;
    let rest = raw
        .read_to_close(Duration::from_secs(10))
        .await
        .expect("the broker closes the socket");
    assert!(rest.is_empty(), "no frame, got {rest:?}");
}

#[tokio::test]
async fn second_channel_open_closes_connection_with_504() {
    let broker = TestBroker::start();
    let (mut raw, _) = Raw::open(&broker, 0).await;
    raw.channel_open(1).await;
    assert_eq!(raw.recv_non_heartbeat().await.method(), Some((20, 11)));
    raw.channel_open(1).await;
    let close = raw.recv_non_heartbeat().await;
    assert_eq!(close.channel, 0, "a connection error");
    assert_eq!(
        close.close(),
        Some((
            504,
            "CHANNEL_ERROR - second 'channel.open' seen".to_string(),
            20,
            10
        ))
    );
}

#[tokio::test]
async fn method_on_unopened_channel_closes_connection_with_504() {
    let broker = TestBroker::start();
    let (mut raw, _) = Raw::open(&broker, 0).await;
    raw.queue_declare(5, "q").await;
    let close = raw.recv_non_heartbeat().await;
    assert_eq!(close.channel, 0, "a connection error");
    assert_eq!(
        close.close(),
        Some((
            504,
            "CHANNEL_ERROR - expected 'channel.open'".to_string(),
            50,
            10
        ))
    );
    // The broker waits for close-ok, then drops the connection.
    raw.send_method(0, 10, 51, &[]).await;
    raw.read_to_close(WAIT)
        .await
        .expect("socket closed after close-ok");
}

#[tokio::test]
async fn channel_close_carries_failing_method_ids() {
    let broker = TestBroker::start();
    let vh = vhost(&broker);
    let (mut raw, _) = Raw::open(&broker, 0).await;
    raw.channel_open(1).await;
    assert_eq!(raw.recv_non_heartbeat().await.method(), Some((20, 11)));
    // queue.declare passive of a missing queue.
    let mut args = vec![0, 0];
    args.push(9);
    args.extend_from_slice(b"p_missing");
    args.push(1); // passive
    args.extend_from_slice(&0u32.to_be_bytes());
    raw.send_method(1, 50, 10, &args).await;
    let close = raw.recv_non_heartbeat().await;
    assert_eq!(close.channel, 1, "a channel error");
    assert_eq!(
        close.close(),
        Some((
            404,
            format!("NOT_FOUND - no queue 'p_missing' in vhost '{vh}'"),
            50,
            10
        ))
    );
    // After close-ok the channel number can be opened again.
    raw.send_method(1, 20, 41, &[]).await;
    raw.channel_open(1).await;
    assert_eq!(raw.recv_non_heartbeat().await.method(), Some((20, 11)));
}
