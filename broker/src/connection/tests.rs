//! The connection and channel state machines driven with frames and a simulated clock: no
//! sockets, no sleeps.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rmqd_codec::*;

use super::Connection;
use crate::broker::{Broker, BrokerConfig};

fn broker() -> Arc<Broker> {
    let broker = Broker::new(BrokerConfig::default());
    broker.add_vhost("/");
    broker.users.add("guest", "guest");
    broker.users.grant("guest", "/");
    broker.users.set_loopback_only(&["guest".to_string()]);
    broker
}

fn loopback() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn listener() -> SocketAddr {
    "127.0.0.1:5672".parse().unwrap()
}

/// A client's view of one connection state machine.
struct Client {
    conn: Connection,
    now: Instant,
    input: BytesMut,
    decoder: FrameDecoder,
}

fn capabilities() -> FieldTable {
    [
        "authentication_failure_close",
        "consumer_cancel_notify",
        "connection.blocked",
    ]
    .iter()
    .map(|c| (ShortStr::from_static(c), FieldValue::Bool(true)))
    .collect()
}

impl Client {
    fn new(broker: &Arc<Broker>) -> Client {
        let now = Instant::now();
        Client {
            conn: Connection::new(Arc::clone(broker), loopback(), listener(), now),
            now,
            input: BytesMut::new(),
            decoder: FrameDecoder::default(),
        }
    }

    fn send_bytes(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        self.conn.handle_input(&mut self.input, self.now);
    }

    fn send(&mut self, channel: u16, method: impl Into<Method>) {
        let mut out = BytesMut::new();
        encode_method(channel, &method.into(), &mut out);
        self.send_bytes(&out);
    }

    fn publish(&mut self, channel: u16, exchange: &str, routing_key: &str, body: &[u8]) {
        let mut out = BytesMut::new();
        let publish = Method::BasicPublish(BasicPublish {
            exchange: ShortStr::try_from(exchange).unwrap(),
            routing_key: ShortStr::try_from(routing_key).unwrap(),
            ..Default::default()
        });
        encode_content(
            channel,
            &publish,
            &BasicProperties::default(),
            body,
            131_072,
            &mut out,
        );
        self.send_bytes(&out);
    }

    /// Everything the broker has to send now, decoded.
    fn recv(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        let mut buf = BytesMut::new();
        while let Some(bytes) = self.conn.poll_transmit(self.now) {
            buf.extend_from_slice(&bytes);
        }
        while let Some(frame) = self
            .decoder
            .decode(&mut buf)
            .expect("broker sends valid frames")
        {
            frames.push(frame);
        }
        assert!(buf.is_empty(), "partial frame from the broker");
        frames
    }

    fn methods(&mut self) -> Vec<Method> {
        self.recv()
            .into_iter()
            .filter_map(|f| match f {
                Frame::Method { method, .. } => Some(method),
                _ => None,
            })
            .collect()
    }

    fn start_ok(&mut self, user: &str, password: &str) {
        self.send_bytes(&PROTOCOL_HEADER);
        let methods = self.methods();
        assert!(
            matches!(methods[..], [Method::ConnectionStart(_)]),
            "{methods:?}"
        );
        let response = format!("\0{user}\0{password}");
        let client_properties: FieldTable = [(
            ShortStr::from_static("capabilities"),
            FieldValue::Table(capabilities()),
        )]
        .into_iter()
        .collect();
        self.send(
            0,
            ConnectionStartOk {
                client_properties,
                mechanism: ShortStr::from_static("PLAIN"),
                response: Bytes::from(response),
                locale: ShortStr::from_static("en_US"),
            },
        );
    }

    /// Runs the whole handshake as guest on vhost `/` with the given heartbeat.
    fn open(broker: &Arc<Broker>, heartbeat: u16) -> Client {
        let mut client = Client::new(broker);
        client.start_ok("guest", "guest");
        let methods = client.methods();
        assert!(
            matches!(methods[..], [Method::ConnectionTune(_)]),
            "{methods:?}"
        );
        client.send(
            0,
            ConnectionTuneOk {
                channel_max: 2047,
                frame_max: 131_072,
                heartbeat,
            },
        );
        client.send(
            0,
            ConnectionOpen {
                virtual_host: ShortStr::from_static("/"),
                ..Default::default()
            },
        );
        let methods = client.methods();
        assert!(
            matches!(methods[..], [Method::ConnectionOpenOk(_)]),
            "{methods:?}"
        );
        client
    }

    fn open_channel(&mut self, channel: u16) {
        self.send(channel, ChannelOpen::default());
        let methods = self.methods();
        assert!(
            matches!(methods[..], [Method::ChannelOpenOk(_)]),
            "{methods:?}"
        );
    }

    fn declare_queue(&mut self, channel: u16, name: &str) {
        self.send(
            channel,
            QueueDeclare {
                queue: ShortStr::try_from(name).unwrap(),
                ..Default::default()
            },
        );
        let methods = self.methods();
        assert!(
            matches!(methods[..], [Method::QueueDeclareOk(_)]),
            "{methods:?}"
        );
    }

    /// [`Client::open`], then channel 1 opened with `queues` declared and `qos` set on it.
    fn open_with_qos(broker: &Arc<Broker>, queues: &[&str], qos: BasicQos) -> Client {
        let mut client = Client::open(broker, 0);
        client.open_channel(1);
        for queue in queues {
            client.declare_queue(1, queue);
        }
        client.send(1, qos);
        let methods = client.methods();
        assert!(
            matches!(methods[..], [Method::BasicQosOk(_)]),
            "{methods:?}"
        );
        client
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.conn.handle_timeout(self.now);
    }
}

fn close_code(methods: &[Method]) -> Option<(u16, String)> {
    methods.iter().find_map(|m| match m {
        Method::ConnectionClose(c) => Some((c.reply_code, c.reply_text.to_string())),
        Method::ChannelClose(c) => Some((c.reply_code, c.reply_text.to_string())),
        _ => None,
    })
}

#[test]
fn start_advertises_rabbitmq_capabilities_and_mechanisms() {
    let broker = broker();
    let mut client = Client::new(&broker);
    client.send_bytes(&PROTOCOL_HEADER);
    let methods = client.methods();
    let Method::ConnectionStart(start) = &methods[0] else {
        panic!("expected connection.start, got {methods:?}");
    };
    assert_eq!((start.version_major, start.version_minor), (0, 9));
    assert_eq!(&start.mechanisms[..], b"AMQPLAIN PLAIN");
    let Some(FieldValue::Table(caps)) = start.server_properties.get("capabilities") else {
        panic!("no capabilities table");
    };
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "authentication_failure_close",
        "per_consumer_qos",
    ] {
        assert_eq!(caps.get(cap), Some(&FieldValue::Bool(true)), "{cap}");
    }
}

#[test]
fn wrong_protocol_header_gets_ours_back_and_the_socket_closes() {
    let broker = broker();
    let mut client = Client::new(&broker);
    client.send_bytes(b"AMQP\x00\x00\x09\x02");
    let bytes = client.conn.poll_transmit(client.now).unwrap();
    assert_eq!(&bytes[..], &PROTOCOL_HEADER);
    assert!(client.conn.is_closed());
}

#[test]
fn bad_password_is_refused_with_403_through_connection_close() {
    let broker = broker();
    let mut client = Client::new(&broker);
    client.start_ok("guest", "wrong");
    let methods = client.methods();
    assert_eq!(
        close_code(&methods),
        Some((
            403,
            "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.".to_string()
        ))
    );
    assert!(client.conn.is_closed());
}

#[test]
fn guest_from_a_remote_address_is_refused() {
    let broker = broker();
    let now = Instant::now();
    let mut client = Client {
        conn: Connection::new(
            Arc::clone(&broker),
            "10.1.2.3:5000".parse().unwrap(),
            listener(),
            now,
        ),
        now,
        input: BytesMut::new(),
        decoder: FrameDecoder::default(),
    };
    client.start_ok("guest", "guest");
    assert_eq!(close_code(&client.methods()).map(|c| c.0), Some(403));
}

#[test]
fn unknown_vhost_is_530() {
    let broker = broker();
    let mut client = Client::new(&broker);
    client.start_ok("guest", "guest");
    client.methods();
    client.send(
        0,
        ConnectionTuneOk {
            channel_max: 0,
            frame_max: 131_072,
            heartbeat: 0,
        },
    );
    client.send(
        0,
        ConnectionOpen {
            virtual_host: ShortStr::from_static("nope"),
            ..Default::default()
        },
    );
    assert_eq!(
        close_code(&client.methods()),
        Some((530, "NOT_ALLOWED - vhost nope not found".to_string()))
    );
}

#[test]
fn frame_max_below_the_minimum_is_refused() {
    let broker = broker();
    let mut client = Client::new(&broker);
    client.start_ok("guest", "guest");
    client.methods();
    client.send(
        0,
        ConnectionTuneOk {
            channel_max: 0,
            frame_max: 4096,
            heartbeat: 0,
        },
    );
    let (code, text) = close_code(&client.methods()).unwrap();
    assert_eq!(code, 530);
    assert_eq!(
        text,
        "NOT_ALLOWED - negotiated frame_max = 4096 is lower than the minimum allowed value (8192)"
    );
}

#[test]
fn handshake_that_never_finishes_is_dropped_after_ten_seconds() {
    let broker = broker();
    let mut client = Client::new(&broker);
    client.advance(Duration::from_secs(9));
    assert!(!client.conn.is_closed());
    client.advance(Duration::from_secs(2));
    assert!(client.conn.is_closed());
}

#[test]
fn heartbeats_are_sent_and_a_silent_peer_is_dropped_after_two_intervals() {
    let broker = broker();
    let mut client = Client::open(&broker, 2);
    client.advance(Duration::from_millis(1100));
    assert_eq!(
        client.recv(),
        vec![Frame::Heartbeat],
        "a heartbeat after half an interval"
    );
    client.advance(Duration::from_millis(3000));
    assert!(
        client.conn.is_closed(),
        "4.1 s of silence with a 2 s heartbeat"
    );
}

#[test]
fn a_peer_that_keeps_talking_is_not_dropped() {
    let broker = broker();
    let mut client = Client::open(&broker, 2);
    for _ in 0..10 {
        client.advance(Duration::from_millis(1000));
        let mut heartbeat = BytesMut::new();
        encode_heartbeat(&mut heartbeat);
        client.send_bytes(&heartbeat);
    }
    assert!(!client.conn.is_closed());
}

#[test]
fn channel_error_closes_only_that_channel() {
    let broker = broker();
    let mut client = Client::open(&broker, 0);
    client.open_channel(1);
    client.open_channel(2);
    client.send(
        1,
        QueueDeclare {
            queue: ShortStr::from_static("missing"),
            passive: true,
            ..Default::default()
        },
    );
    let frames = client.recv();
    let [
        Frame::Method {
            channel: 1,
            method: Method::ChannelClose(close),
        },
    ] = &frames[..]
    else {
        panic!("expected channel.close on channel 1, got {frames:?}");
    };
    assert_eq!(close.reply_code, 404);
    assert_eq!(
        close.reply_text,
        "NOT_FOUND - no queue 'missing' in vhost '/'"
    );
    assert_eq!((close.class_id, close.method_id), (50, 10));
    // Channel 2 still works, and channel 1 ignores everything until close-ok.
    client.declare_queue(2, "q");
    client.send(1, QueueDeclare::default());
    assert!(client.recv().is_empty());
    client.send(1, ChannelCloseOk {});
    client.open_channel(1);
}

#[test]
fn method_on_a_channel_never_opened_is_a_504_connection_error() {
    let broker = broker();
    let mut client = Client::open(&broker, 0);
    client.send(5, QueueDeclare::default());
    assert_eq!(
        close_code(&client.methods()),
        Some((504, "CHANNEL_ERROR - expected 'channel.open'".to_string()))
    );
}

#[test]
fn malformed_frame_closes_the_connection_with_501() {
    let broker = broker();
    let mut client = Client::open(&broker, 0);
    client.send_bytes(&[1, 0, 1, 0, 0, 0, 2, 0, 50, 0x00]);
    assert_eq!(close_code(&client.methods()).map(|c| c.0), Some(501));
    // After close-ok the socket closes.
    client.send(0, ConnectionCloseOk {});
    assert!(client.conn.is_closed());
}

#[test]
fn published_message_is_fetched_with_get_and_counted() {
    let broker = broker();
    let mut client = Client::open(&broker, 0);
    client.open_channel(1);
    client.declare_queue(1, "q");
    client.publish(1, "", "q", b"one");
    client.publish(1, "", "q", b"two");
    client.send(
        1,
        BasicGet {
            queue: ShortStr::from_static("q"),
            no_ack: true,
            ..Default::default()
        },
    );
    let frames = client.recv();
    let [
        Frame::Method {
            method: Method::BasicGetOk(ok),
            ..
        },
        Frame::Header { .. },
        Frame::Body { payload, .. },
    ] = &frames[..]
    else {
        panic!("expected get-ok with content, got {frames:?}");
    };
    assert_eq!(ok.message_count, 1, "one left after this one");
    assert_eq!(&payload[..], b"one");
}

#[test]
fn confirms_for_one_read_go_out_as_one_multiple_ack() {
    let broker = broker();
    let mut client = Client::open(&broker, 0);
    client.open_channel(1);
    client.declare_queue(1, "q");
    client.send(1, ConfirmSelect { nowait: false });
    assert!(matches!(client.methods()[..], [Method::ConfirmSelectOk(_)]));
    let mut batch = BytesMut::new();
    for _ in 0..5 {
        let publish = Method::BasicPublish(BasicPublish {
            routing_key: ShortStr::from_static("q"),
            ..Default::default()
        });
        encode_content(
            1,
            &publish,
            &BasicProperties::default(),
            b"m",
            131_072,
            &mut batch,
        );
    }
    client.send_bytes(&batch);
    assert_eq!(
        client.methods(),
        vec![Method::BasicAck(BasicAck {
            delivery_tag: 5,
            multiple: true
        })]
    );
}

#[test]
fn prefetch_one_holds_the_second_delivery_until_the_first_is_acked() {
    let broker = broker();
    let mut client = Client::open_with_qos(
        &broker,
        &["q"],
        BasicQos {
            prefetch_count: 1,
            ..Default::default()
        },
    );
    client.send(
        1,
        BasicConsume {
            queue: ShortStr::from_static("q"),
            consumer_tag: ShortStr::from_static("c"),
            ..Default::default()
        },
    );
    assert!(matches!(client.methods()[..], [Method::BasicConsumeOk(_)]));
    client.publish(1, "", "q", b"a");
    client.publish(1, "", "q", b"b");
    let delivered: Vec<u64> = client
        .methods()
        .into_iter()
        .filter_map(|m| match m {
            Method::BasicDeliver(d) => Some(d.delivery_tag),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, vec![1]);
    client.send(
        1,
        BasicAck {
            delivery_tag: 1,
            multiple: false,
        },
    );
    let methods = client.methods();
    assert!(
        matches!(&methods[..], [Method::BasicDeliver(d)] if d.delivery_tag == 2),
        "{methods:?}"
    );
}

#[test]
fn unacked_messages_go_back_to_the_queue_when_the_channel_closes() {
    let broker = broker();
    let mut client = Client::open(&broker, 0);
    client.open_channel(1);
    client.declare_queue(1, "q");
    client.publish(1, "", "q", b"a");
    client.send(
        1,
        BasicGet {
            queue: ShortStr::from_static("q"),
            ..Default::default()
        },
    );
    client.recv();
    client.send(1, ChannelClose::default());
    assert!(matches!(client.methods()[..], [Method::ChannelCloseOk(_)]));
    client.open_channel(2);
    client.send(
        2,
        BasicGet {
            queue: ShortStr::from_static("q"),
            no_ack: true,
            ..Default::default()
        },
    );
    let methods = client.methods();
    assert!(
        matches!(&methods[..], [Method::BasicGetOk(ok)] if ok.redelivered),
        "{methods:?}"
    );
}

#[test]
fn unroutable_mandatory_publish_comes_back_before_its_confirm() {
    let broker = broker();
    let mut client = Client::open(&broker, 0);
    client.open_channel(1);
    client.send(1, ConfirmSelect { nowait: false });
    client.methods();
    let mut out = BytesMut::new();
    let publish = Method::BasicPublish(BasicPublish {
        exchange: ShortStr::from_static("amq.direct"),
        routing_key: ShortStr::from_static("nowhere"),
        mandatory: true,
        ..Default::default()
    });
    encode_content(
        1,
        &publish,
        &BasicProperties::default(),
        b"x",
        131_072,
        &mut out,
    );
    client.send_bytes(&out);
    let methods = client.methods();
    let [Method::BasicReturn(returned), Method::BasicAck(ack)] = &methods[..] else {
        panic!("expected basic.return then basic.ack, got {methods:?}");
    };
    assert_eq!(
        (returned.reply_code, returned.reply_text.to_string()),
        (312, "NO_ROUTE".to_string())
    );
    assert_eq!(ack.delivery_tag, 1);
}

#[test]
fn exclusive_queue_is_locked_to_its_connection_and_deleted_with_it() {
    let broker = broker();
    let mut owner = Client::open(&broker, 0);
    owner.open_channel(1);
    owner.send(
        1,
        QueueDeclare {
            queue: ShortStr::from_static("mine"),
            exclusive: true,
            ..Default::default()
        },
    );
    owner.methods();
    let mut other = Client::open(&broker, 0);
    other.open_channel(1);
    other.send(
        1,
        BasicGet {
            queue: ShortStr::from_static("mine"),
            ..Default::default()
        },
    );
    assert_eq!(close_code(&other.methods()).map(|c| c.0), Some(405));
    owner.conn.on_closed(owner.now);
    other.open_channel(2);
    other.send(
        2,
        QueueDeclare {
            queue: ShortStr::from_static("mine"),
            passive: true,
            ..Default::default()
        },
    );
    assert_eq!(close_code(&other.methods()).map(|c| c.0), Some(404));
}

#[test]
fn memory_alarm_blocks_a_publisher_and_unblocks_it_when_the_queue_drains() {
    let broker = Broker::new(BrokerConfig {
        memory_high_watermark: 10_000,
        ..BrokerConfig::default()
    });
    broker.add_vhost("/");
    broker.users.add("guest", "guest");
    broker.users.grant("guest", "/");
    let mut client = Client::open(&broker, 0);
    client.open_channel(1);
    client.declare_queue(1, "q");
    client.publish(1, "", "q", &[0; 20_000]);
    assert!(
        client.methods().is_empty(),
        "the publish that raised the alarm went through"
    );
    client.publish(1, "", "q", b"more");
    let methods = client.methods();
    assert!(
        methods
            .iter()
            .any(|m| matches!(m, Method::ConnectionBlocked(b) if b.reason == "low on memory")),
        "{methods:?}"
    );
    assert!(
        !client.conn.wants_read(),
        "a publisher under the alarm is no longer read"
    );
    // Another connection (a consumer, say) is not blocked, and drains the queue.
    let mut drainer = Client::open(&broker, 0);
    drainer.open_channel(1);
    drainer.send(
        1,
        QueuePurge {
            queue: ShortStr::from_static("q"),
            ..Default::default()
        },
    );
    let drained = drainer.methods();
    assert!(
        // Reading stopped right after the second publish's method frame: only the first message
        // was in the queue.
        matches!(&drained[..], [Method::QueuePurgeOk(ok)] if ok.message_count == 1),
        "{drained:?}"
    );
    let methods = client.methods();
    assert!(
        methods
            .iter()
            .any(|m| matches!(m, Method::ConnectionUnblocked(_))),
        "{methods:?}"
    );
    assert!(client.conn.wants_read());
    // The rest of the held-back message is read now and reaches the queue.
    client.conn.resume_input(&mut client.input, client.now);
    drainer.send(
        1,
        BasicGet {
            queue: ShortStr::from_static("q"),
            no_ack: true,
            ..Default::default()
        },
    );
    assert!(matches!(&drainer.methods()[..], [Method::BasicGetOk(_)]));
}

#[test]
fn channel_prefetch_freed_by_one_queue_lets_another_queue_deliver() {
    let broker = broker();
    let mut client = Client::open_with_qos(
        &broker,
        &["a", "b"],
        BasicQos {
            prefetch_count: 1,
            global: true,
            ..Default::default()
        },
    );
    for queue in ["a", "b"] {
        client.send(
            1,
            BasicConsume {
                queue: ShortStr::try_from(queue).unwrap(),
                ..Default::default()
            },
        );
    }
    client.methods();
    client.publish(1, "", "a", b"1");
    client.publish(1, "", "b", b"2");
    let first: Vec<u64> = client
        .methods()
        .into_iter()
        .filter_map(|m| match m {
            Method::BasicDeliver(d) => Some(d.delivery_tag),
            _ => None,
        })
        .collect();
    assert_eq!(
        first,
        vec![1],
        "the channel allows one unacked message in all"
    );
    client.send(
        1,
        BasicAck {
            delivery_tag: 1,
            multiple: false,
        },
    );
    let methods = client.methods();
    assert!(
        matches!(&methods[..], [Method::BasicDeliver(d)] if &d.routing_key == "b"),
        "{methods:?}"
    );
}

/// The one live connection's listing: its handshake, state and channels.
fn listed(
    broker: &Broker,
) -> (
    crate::connections::Handshake,
    &'static str,
    Vec<(u16, crate::connections::ChannelCounts)>,
) {
    let all = broker.connections.list();
    assert_eq!(all.len(), 1, "one connection");
    let info = &all[0].1;
    (info.handshake(), info.state().name(), info.channels())
}

#[test]
fn listing_shows_what_the_handshake_settled_and_the_state() {
    let broker = broker();
    let mut client = Client::new(&broker);
    client.start_ok("guest", "guest");
    client.recv();
    let (handshake, state, _) = listed(&broker);
    assert_eq!((handshake.user.as_str(), state), ("guest", "tuning"));
    assert_eq!(handshake.auth_mechanism, "PLAIN");
    assert!(handshake.client_properties.get("capabilities").is_some());
    drop(client);
    assert!(broker.connections.list().is_empty(), "gone once dropped");

    let _client = Client::open(&broker, 30);
    let (handshake, state, channels) = listed(&broker);
    assert_eq!(state, "running");
    assert_eq!(
        (
            handshake.frame_max,
            handshake.channel_max,
            handshake.heartbeat
        ),
        (131_072, 2047, 30)
    );
    assert_eq!(
        handshake.vhost.map(|v| v.to_string()),
        Some("/".to_string())
    );
    assert!(channels.is_empty());
}

#[test]
fn channel_counts_are_published_once_a_batch_is_handled() {
    let broker = broker();
    let mut client = Client::open_with_qos(
        &broker,
        &["q"],
        BasicQos {
            prefetch_count: 2,
            ..Default::default()
        },
    );
    client.send(
        1,
        BasicConsume {
            queue: ShortStr::from_static("q"),
            consumer_tag: ShortStr::from_static("c"),
            ..Default::default()
        },
    );
    for body in [b"a", b"b", b"c"] {
        client.publish(1, "", "q", body);
    }
    client.recv();
    client.open_channel(2);
    client.send(2, ConfirmSelect::default());
    client.recv();
    let (_, _, channels) = listed(&broker);
    assert_eq!(channels.len(), 2);
    assert_eq!(
        (
            channels[0].0,
            channels[0].1.consumers,
            channels[0].1.unacked,
            channels[0].1.prefetch
        ),
        (1, 1, 2, 2),
        "two delivered under prefetch 2"
    );
    assert!(channels[1].1.confirm && !channels[0].1.confirm);

    client.send(
        1,
        BasicAck {
            delivery_tag: 2,
            multiple: true,
        },
    );
    client.recv();
    assert_eq!(
        listed(&broker).2[0].1.unacked,
        1,
        "two acked, the third delivered"
    );

    client.send(2, ChannelClose::default());
    client.recv();
    assert_eq!(listed(&broker).2.len(), 1);
}

#[test]
fn force_close_through_the_registry_sends_320_with_the_reason() {
    let broker = broker();
    let mut client = Client::open(&broker, 0);
    let id = client.conn.id();
    broker
        .connections
        .force_close("maintenance window", |c, _| c == id);
    let methods = client.methods();
    assert_eq!(
        close_code(&methods),
        Some((320, "CONNECTION_FORCED - maintenance window".to_string()))
    );
    assert!(
        broker.connections.list().is_empty(),
        "a closed connection is no longer listed"
    );
}
