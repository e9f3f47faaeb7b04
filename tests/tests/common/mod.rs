//! Helpers shared by the integration test files: connecting lapin and amqprs clients to a
//! [`TestBroker`], collecting deliveries, and asserting on the reply code and text of the
//! channel.close or connection.close the broker sends.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fmt::Debug;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use amqprs::callbacks::{ChannelCallback, ConnectionCallback};
use amqprs::channel::Channel as AChannel;
use amqprs::connection::{Connection as AConnection, OpenConnectionArguments};
use amqprs::{Ack, BasicProperties as AProps, Cancel, Close, CloseChannel, Nack, Return};
use async_trait::async_trait;
use lapin::message::{BasicGetMessage, Delivery, DeliveryResult};
use lapin::options::{BasicConsumeOptions, BasicGetOptions, BasicPublishOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ErrorKind};
use tokio::sync::mpsc;

pub use rmqd_tests::TestBroker;

/// Upper bound on any single wait for something the broker should do promptly, so that a
/// missing reply fails the test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(5);

/// How long to watch for something that must *not* happen.
pub const QUIET: Duration = Duration::from_millis(300);

/// Awaits `fut`, failing the test after [`WAIT`].
pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// The vhost of `broker.url()`, percent-decoded (`/` for the default one).
pub fn vhost(broker: &TestBroker) -> String {
    let url = broker.url();
    let path = url.rsplit('/').next().unwrap_or("");
    path.replace("%2f", "/").replace("%2F", "/")
}

/// `amqp://user:pass@127.0.0.1:PORT/<vhost>` for `broker`, with the vhost percent-encoded.
pub fn url_for(broker: &TestBroker, user: &str, pass: &str, vhost: &str) -> String {
    rmqd_broker::amqp_url("127.0.0.1", broker.port(), user, pass, vhost)
}

/// Definitions exported by `rabbitmqctl export_definitions` from RabbitMQ 3.10.8.
pub fn rabbitmq_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../broker/tests/fixtures/rabbitmq-3.10.8-definitions.json")
}

// ---------------------------------------------------------------------------------------------
// lapin

pub async fn connect_url(url: &str) -> lapin::Result<Connection> {
    tokio::time::timeout(
        WAIT,
        Connection::connect(url, ConnectionProperties::default()),
    )
    .await
    .unwrap_or_else(|_| panic!("timed out connecting to {url}"))
}

pub async fn connect(broker: &TestBroker) -> Connection {
    connect_url(&broker.url())
        .await
        .expect("lapin connects to the broker")
}

pub async fn open_channel(conn: &Connection) -> Channel {
    within("channel.open-ok", conn.create_channel())
        .await
        .expect("channel.open")
}

/// A connection and one channel on it.
pub async fn connect_channel(broker: &TestBroker) -> (Connection, Channel) {
    let conn = connect(broker).await;
    let ch = open_channel(&conn).await;
    (conn, ch)
}

/// The reply code and text of the AMQP close carried by `err`, if any.
pub fn amqp_error(err: &lapin::Error) -> Option<(u16, String)> {
    match err.kind() {
        ErrorKind::ProtocolError(e) => Some((e.get_id(), e.get_message().to_string())),
        _ => None,
    }
}

/// Asserts that `result` failed with an AMQP close with exactly this code and text.
#[track_caller]
pub fn assert_closed_with<T: Debug>(result: lapin::Result<T>, code: u16, text: &str) {
    match result {
        Ok(value) => panic!("expected close {code} {text:?}, got Ok({value:?})"),
        Err(err) => match amqp_error(&err) {
            Some((c, t)) => assert_eq!(
                (c, t.as_str()),
                (code, text),
                "reply code and text of the close"
            ),
            None => panic!("expected close {code} {text:?}, got error {err:?}"),
        },
    }
}

/// Publishes `body` without mandatory and with default properties.
pub async fn publish(ch: &Channel, exchange: &str, routing_key: &str, body: &[u8]) {
    publish_with(ch, exchange, routing_key, body, BasicProperties::default()).await;
}

pub async fn publish_with(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    let confirm = within(
        "basic.publish",
        ch.basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            props,
        ),
    )
    .await
    .expect("basic.publish is sent");
    // On a channel in confirm mode, wait for the broker's ack so that the message is surely
    // enqueued before the test looks at counts (RabbitMQ enqueues asynchronously).
    let confirmation = within("publisher confirm", confirm)
        .await
        .expect("publisher confirm");
    assert!(!confirmation.is_nack(), "publish nacked");
}

/// Opens a channel in confirm mode, on which [`publish`] waits for each message's ack.
pub async fn confirm_channel(conn: &Connection) -> Channel {
    let ch = open_channel(conn).await;
    within("confirm.select-ok", ch.confirm_select(Default::default()))
        .await
        .expect("confirm.select");
    ch
}

/// queue.declare with passive set: whether the queue exists, without creating it.
pub async fn passive_declare(ch: &Channel, name: &str) -> lapin::Result<lapin::Queue> {
    let passive = lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    within(
        "queue.declare (passive)",
        ch.queue_declare(name.into(), passive, FieldTable::default()),
    )
    .await
}

pub async fn declare_queue(ch: &Channel, name: &str) -> lapin::Queue {
    within(
        "queue.declare-ok",
        ch.queue_declare(name.into(), Default::default(), FieldTable::default()),
    )
    .await
    .expect("queue.declare")
}

pub async fn bind(ch: &Channel, queue: &str, exchange: &str, routing_key: &str) {
    within(
        "queue.bind-ok",
        ch.queue_bind(
            queue.into(),
            exchange.into(),
            routing_key.into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("queue.bind");
}

pub async fn declare_exchange(ch: &Channel, name: &str, kind: lapin::ExchangeKind) {
    within(
        "exchange.declare-ok",
        ch.exchange_declare(name.into(), kind, Default::default(), FieldTable::default()),
    )
    .await
    .expect("exchange.declare");
}

/// basic.get with manual ack.
pub async fn get(ch: &Channel, queue: &str) -> Option<BasicGetMessage> {
    within(
        "basic.get-ok or get-empty",
        ch.basic_get(queue.into(), BasicGetOptions::default()),
    )
    .await
    .expect("basic.get")
}

/// basic.get with no_ack, returning only the body.
pub async fn get_body(ch: &Channel, queue: &str) -> Option<Vec<u8>> {
    within(
        "basic.get-ok or get-empty",
        ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .expect("basic.get")
    .map(|m| m.delivery.data)
}

/// Drains `queue` with no-ack basic.get, returning the bodies as strings.
pub async fn drain(ch: &Channel, queue: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    while let Some(body) = get_body(ch, queue).await {
        bodies.push(String::from_utf8(body).expect("utf-8 body"));
    }
    bodies
}

/// The number of ready messages in `queue`, from a passive declare.
pub async fn message_count(ch: &Channel, queue: &str) -> u32 {
    within(
        "queue.declare-ok (passive)",
        ch.queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("passive queue.declare")
    .message_count()
}

/// What a lapin consumer saw.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Event {
    Delivery(Delivery),
    /// The consumer ended: a basic.cancel from the server (or the channel went away).
    Cancelled,
    Error(lapin::Error),
}

/// A lapin consumer whose deliveries are forwarded to a channel the test reads.
pub struct Consumer {
    pub tag: String,
    pub events: mpsc::UnboundedReceiver<Event>,
}

impl Consumer {
    /// The next delivery; fails the test on timeout, cancel or error.
    pub async fn next(&mut self) -> Delivery {
        match within("a delivery", self.events.recv()).await {
            Some(Event::Delivery(d)) => d,
            other => panic!("expected a delivery on {}, got {other:?}", self.tag),
        }
    }

    /// The next `n` deliveries.
    pub async fn take(&mut self, n: usize) -> Vec<Delivery> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }

    /// Asserts nothing arrives for [`QUIET`].
    pub async fn assert_idle(&mut self) {
        if let Ok(Some(event)) = tokio::time::timeout(QUIET, self.events.recv()).await {
            panic!("expected nothing on {}, got {event:?}", self.tag);
        }
    }

    /// Waits for the consumer to be cancelled.
    pub async fn cancelled(&mut self) {
        match within("the consumer's cancellation", self.events.recv()).await {
            Some(Event::Cancelled) => {}
            other => panic!("expected {} to be cancelled, got {other:?}", self.tag),
        }
    }
}

pub async fn consume(
    ch: &Channel,
    queue: &str,
    tag: &str,
    options: BasicConsumeOptions,
) -> lapin::Result<Consumer> {
    let consumer = within(
        "basic.consume-ok",
        ch.basic_consume(queue.into(), tag.into(), options, FieldTable::default()),
    )
    .await?;
    let (tx, events) = mpsc::unbounded_channel();
    let tag = consumer.tag().to_string();
    consumer.set_delegate(move |delivery: DeliveryResult| {
        let tx = tx.clone();
        async move {
            let event = match delivery {
                Ok(Some(d)) => Event::Delivery(d),
                Ok(None) => Event::Cancelled,
                Err(e) => Event::Error(e),
            };
            let _ = tx.send(event);
        }
    });
    Ok(Consumer { tag, events })
}

/// A consumer with manual acks.
pub async fn consume_acked(ch: &Channel, queue: &str, tag: &str) -> Consumer {
    consume(ch, queue, tag, BasicConsumeOptions::default())
        .await
        .expect("basic.consume")
}

pub fn body(d: &Delivery) -> &str {
    std::str::from_utf8(&d.data).expect("utf-8 body")
}

pub fn bodies(ds: &[Delivery]) -> Vec<&str> {
    ds.iter().map(body).collect()
}

pub fn table(entries: &[(&str, lapin::types::AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert((*k).into(), v.clone());
    }
    t
}

pub fn long_str(s: &str) -> lapin::types::AMQPValue {
    lapin::types::AMQPValue::LongString(s.into())
}

// ---------------------------------------------------------------------------------------------
// amqprs

pub fn amqprs_args(
    broker: &TestBroker,
    user: &str,
    pass: &str,
    vhost: &str,
) -> OpenConnectionArguments {
    let mut args = OpenConnectionArguments::new("127.0.0.1", broker.port(), user, pass);
    args.virtual_host(vhost);
    args
}

pub async fn amqprs_connect(broker: &TestBroker) -> AConnection {
    let args = amqprs_args(broker, "guest", "guest", &vhost(broker));
    within("amqprs connection", AConnection::open(&args))
        .await
        .expect("amqprs connects to the broker")
}

/// Asynchronous notifications an amqprs connection or channel received.
#[derive(Debug)]
pub enum Notice {
    ConnectionClose(u16, String),
    Blocked(String),
    Unblocked,
    ChannelClose(u16, String),
    Cancel(String),
    Ack(u64, bool),
    Nack(u64, bool),
    Return {
        code: u16,
        text: String,
        exchange: String,
        routing_key: String,
        body: Vec<u8>,
    },
}

/// Forwards every amqprs callback to a channel the test reads.
#[derive(Clone)]
pub struct Recorder(pub mpsc::UnboundedSender<Notice>);

impl Recorder {
    pub fn new() -> (Recorder, mpsc::UnboundedReceiver<Notice>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Recorder(tx), rx)
    }
}

#[async_trait]
impl ConnectionCallback for Recorder {
    async fn close(&mut self, _: &AConnection, close: Close) -> Result<(), amqprs::error::Error> {
        let _ = self.0.send(Notice::ConnectionClose(
            close.reply_code(),
            close.reply_text().to_string(),
        ));
        Ok(())
    }
    async fn blocked(&mut self, _: &AConnection, reason: String) {
        let _ = self.0.send(Notice::Blocked(reason));
    }
    async fn unblocked(&mut self, _: &AConnection) {
        let _ = self.0.send(Notice::Unblocked);
    }
    async fn secret_updated(&mut self, _: &AConnection) {}
}

#[async_trait]
impl ChannelCallback for Recorder {
    async fn close(
        &mut self,
        _: &AChannel,
        close: CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        let _ = self.0.send(Notice::ChannelClose(
            close.reply_code(),
            close.reply_text().to_string(),
        ));
        Ok(())
    }
    async fn cancel(&mut self, _: &AChannel, cancel: Cancel) -> Result<(), amqprs::error::Error> {
        let _ = self
            .0
            .send(Notice::Cancel(cancel.consumer_tag().to_string()));
        Ok(())
    }
    async fn flow(&mut self, _: &AChannel, active: bool) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }
    async fn publish_ack(&mut self, _: &AChannel, ack: Ack) {
        let _ = self.0.send(Notice::Ack(ack.delivery_tag(), ack.mutiple()));
    }
    async fn publish_nack(&mut self, _: &AChannel, nack: Nack) {
        let _ = self
            .0
            .send(Notice::Nack(nack.delivery_tag(), nack.multiple()));
    }
    async fn publish_return(&mut self, _: &AChannel, ret: Return, _: AProps, body: Vec<u8>) {
        let _ = self.0.send(Notice::Return {
            code: ret.reply_code(),
            text: ret.reply_text().to_string(),
            exchange: ret.exchange().to_string(),
            routing_key: ret.routing_key().to_string(),
            body,
        });
    }
}

/// The next notice, failing the test after [`WAIT`].
pub async fn next_notice(rx: &mut mpsc::UnboundedReceiver<Notice>) -> Notice {
    within("an amqprs callback", rx.recv())
        .await
        .expect("the callback recorder is alive")
}

// ---------------------------------------------------------------------------------------------
// A raw AMQP client, for what no client library lets a test do (heartbeat frames, protocol
// errors). Frames are encoded and parsed by hand: type, channel, size, payload, 0xCE.

pub mod raw {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::{TestBroker, WAIT, vhost};

    pub const METHOD: u8 = 1;
    pub const HEADER: u8 = 2;
    pub const BODY: u8 = 3;
    pub const HEARTBEAT: u8 = 8;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RawFrame {
        pub kind: u8,
        pub channel: u16,
        pub payload: Vec<u8>,
    }

    impl RawFrame {
        /// (class_id, method_id) of a method frame.
        pub fn method(&self) -> Option<(u16, u16)> {
            (self.kind == METHOD && self.payload.len() >= 4).then(|| {
                (
                    u16::from_be_bytes([self.payload[0], self.payload[1]]),
                    u16::from_be_bytes([self.payload[2], self.payload[3]]),
                )
            })
        }

        /// (reply_code, reply_text, class_id, method_id) of a connection.close or channel.close.
        pub fn close(&self) -> Option<(u16, String, u16, u16)> {
            match self.method()? {
                (10, 50) | (20, 40) => {
                    let p = &self.payload[4..];
                    let code = u16::from_be_bytes([p[0], p[1]]);
                    let len = p[2] as usize;
                    let text = String::from_utf8_lossy(&p[3..3 + len]).into_owned();
                    let rest = &p[3 + len..];
                    Some((
                        code,
                        text,
                        u16::from_be_bytes([rest[0], rest[1]]),
                        u16::from_be_bytes([rest[2], rest[3]]),
                    ))
                }
                _ => None,
            }
        }
    }

    fn shortstr(out: &mut Vec<u8>, s: &str) {
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }

    fn longstr(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s);
    }

    pub fn method_payload(class: u16, method: u16, args: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(4 + args.len());
        p.extend_from_slice(&class.to_be_bytes());
        p.extend_from_slice(&method.to_be_bytes());
        p.extend_from_slice(args);
        p
    }

    pub struct Raw {
        pub stream: TcpStream,
        buf: Vec<u8>,
    }

    impl Raw {
        pub async fn connect(broker: &TestBroker) -> Raw {
            Raw::connect_port(broker.port()).await
        }

        /// A connection to whatever listens on loopback `port`, such as an `rmqd` subprocess.
        pub async fn connect_port(port: u16) -> Raw {
            let stream = TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("tcp connect");
            Raw {
                stream,
                buf: Vec::new(),
            }
        }

        pub async fn send_bytes(&mut self, bytes: &[u8]) {
            self.stream.write_all(bytes).await.expect("write");
        }

        pub async fn send_frame(&mut self, kind: u8, channel: u16, payload: &[u8]) {
            let mut f = Vec::with_capacity(payload.len() + 8);
            f.push(kind);
            f.extend_from_slice(&channel.to_be_bytes());
            f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            f.extend_from_slice(payload);
            f.push(0xCE);
            self.send_bytes(&f).await;
        }

        pub async fn send_method(&mut self, channel: u16, class: u16, method: u16, args: &[u8]) {
            let payload = method_payload(class, method, args);
            self.send_frame(METHOD, channel, &payload).await;
        }

        pub async fn send_heartbeat(&mut self) {
            self.send_frame(HEARTBEAT, 0, &[]).await;
        }

        /// The next frame; `Ok(None)` when the broker closed the socket, `Err` on timeout.
        pub async fn recv_within(&mut self, limit: Duration) -> Result<Option<RawFrame>, ()> {
            let deadline = tokio::time::Instant::now() + limit;
            loop {
                if self.buf.len() >= 7 {
                    let size =
                        u32::from_be_bytes([self.buf[3], self.buf[4], self.buf[5], self.buf[6]])
                            as usize;
                    if self.buf.len() >= 8 + size {
                        assert_eq!(self.buf[7 + size], 0xCE, "frame end");
                        let frame = RawFrame {
                            kind: self.buf[0],
                            channel: u16::from_be_bytes([self.buf[1], self.buf[2]]),
                            payload: self.buf[7..7 + size].to_vec(),
                        };
                        self.buf.drain(..8 + size);
                        return Ok(Some(frame));
                    }
                }
                let mut chunk = [0u8; 65536];
                match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                    Err(_) => return Err(()),
                    Ok(Ok(0)) | Ok(Err(_)) => return Ok(None),
                    Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        }

        /// The next frame, failing the test on timeout or a closed socket.
        pub async fn recv(&mut self) -> RawFrame {
            match self.recv_within(WAIT).await {
                Ok(Some(frame)) => frame,
                Ok(None) => panic!("the broker closed the socket"),
                Err(()) => panic!("timed out after {WAIT:?} waiting for a frame"),
            }
        }

        /// The next frame that is not a heartbeat.
        pub async fn recv_non_heartbeat(&mut self) -> RawFrame {
            loop {
                let frame = self.recv().await;
                if frame.kind != HEARTBEAT {
                    return frame;
                }
            }
        }

        /// Reads whatever bytes arrive until the broker closes the socket (or `limit` passes).
        pub async fn read_to_close(&mut self, limit: Duration) -> Result<Vec<u8>, ()> {
            let mut all = std::mem::take(&mut self.buf);
            let deadline = tokio::time::Instant::now() + limit;
            loop {
                let mut chunk = [0u8; 4096];
                match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                    Err(_) => return Err(()),
                    Ok(Ok(0)) | Ok(Err(_)) => return Ok(all),
                    Ok(Ok(n)) => all.extend_from_slice(&chunk[..n]),
                }
            }
        }

        /// Sends the protocol header and connection.start-ok as `user`/`pass` with PLAIN,
        /// announcing `capabilities` (none: no capabilities table at all).
        pub async fn start(&mut self, user: &str, pass: &str, capabilities: &[&str]) {
            self.send_bytes(b"AMQP\x00\x00\x09\x01").await;
            let start = self.recv().await;
            assert_eq!(start.method(), Some((10, 10)), "connection.start");
            let mut props = Vec::new();
            if !capabilities.is_empty() {
                let mut caps = Vec::new();
                for capability in capabilities {
                    shortstr(&mut caps, capability);
                    caps.extend_from_slice(b"t\x01");
                }
                shortstr(&mut props, "capabilities");
                props.push(b'F');
                longstr(&mut props, &caps);
            }
            let mut args = Vec::new();
            longstr(&mut args, &props);
            shortstr(&mut args, "PLAIN");
            longstr(&mut args, format!("\0{user}\0{pass}").as_bytes());
            shortstr(&mut args, "en_US");
            self.send_method(0, 10, 11, &args).await;
        }

        /// After [`Raw::start`]: accepts connection.tune's limits with `heartbeat` and opens
        /// `vhost`; returns what connection.tune proposed (channel_max, frame_max, heartbeat).
        pub async fn tune_and_open(&mut self, vhost: &str, heartbeat: u16) -> (u16, u32, u16) {
            let tune = self.recv().await;
            assert_eq!(tune.method(), Some((10, 30)), "connection.tune");
            let p = &tune.payload[4..];
            let proposed = (
                u16::from_be_bytes([p[0], p[1]]),
                u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
                u16::from_be_bytes([p[6], p[7]]),
            );
            let mut args = Vec::new();
            args.extend_from_slice(&proposed.0.to_be_bytes());
            args.extend_from_slice(&proposed.1.to_be_bytes());
            args.extend_from_slice(&heartbeat.to_be_bytes());
            self.send_method(0, 10, 31, &args).await;
            let mut args = Vec::new();
            shortstr(&mut args, vhost);
            shortstr(&mut args, "");
            args.push(0);
            self.send_method(0, 10, 40, &args).await;
            let open_ok = self.recv_non_heartbeat().await;
            assert_eq!(open_ok.method(), Some((10, 41)), "connection.open-ok");
            proposed
        }

        /// Completes the handshake as guest with `heartbeat`; returns connection.tune's
        /// (channel_max, frame_max, heartbeat).
        pub async fn open(broker: &TestBroker, heartbeat: u16) -> (Raw, (u16, u32, u16)) {
            let mut raw = Raw::connect(broker).await;
            raw.start("guest", "guest", &["authentication_failure_close"])
                .await;
            let proposed = raw.tune_and_open(&vhost(broker), heartbeat).await;
            (raw, proposed)
        }

        pub async fn channel_open(&mut self, channel: u16) {
            self.send_method(channel, 20, 10, &[0]).await;
        }

        pub async fn queue_declare(&mut self, channel: u16, queue: &str) {
            let mut args = vec![0, 0];
            shortstr(&mut args, queue);
            args.push(0);
            longstr(&mut args, &[]);
            self.send_method(channel, 50, 10, &args).await;
        }

        /// basic.publish of `body` with no properties, its header and one body frame.
        pub async fn publish(
            &mut self,
            channel: u16,
            exchange: &str,
            routing_key: &str,
            body: &[u8],
        ) {
            let mut args = vec![0, 0];
            shortstr(&mut args, exchange);
            shortstr(&mut args, routing_key);
            args.push(0);
            self.send_method(channel, 60, 40, &args).await;
            let mut header = Vec::new();
            header.extend_from_slice(&60u16.to_be_bytes());
            header.extend_from_slice(&0u16.to_be_bytes());
            header.extend_from_slice(&(body.len() as u64).to_be_bytes());
            header.extend_from_slice(&0u16.to_be_bytes());
            self.send_frame(HEADER, channel, &header).await;
            self.send_frame(BODY, channel, body).await;
        }
    }
}

/// An amqprs connection and channel whose callbacks (connection and channel close, returns,
/// acks, cancels) all go to one recorder. Errors caused by asynchronous methods (a publish, an
/// ack) are only visible as the channel.close or connection.close that follows; this is the
/// reliable way to read their code and text.
pub struct Watched {
    pub conn: AConnection,
    pub ch: AChannel,
    pub notices: mpsc::UnboundedReceiver<Notice>,
}

pub async fn watched_channel(broker: &TestBroker) -> Watched {
    watched_channel_as(broker, "guest", "guest").await
}

/// [`watched_channel`] logged in as `user` in the broker's vhost.
pub async fn watched_channel_as(broker: &TestBroker, user: &str, pass: &str) -> Watched {
    watched(amqprs_args(broker, user, pass, &vhost(broker))).await
}

/// [`watched_channel`] on the broker, vhost and user `url` names (a broker that is not a
/// [`TestBroker`]: an `rmqd` subprocess, an `EmbeddedBroker`).
pub async fn watched_url(url: &str) -> Watched {
    watched(OpenConnectionArguments::try_from(url).expect("amqprs parses the URL")).await
}

async fn watched(args: OpenConnectionArguments) -> Watched {
    let conn = within("amqprs connection", AConnection::open(&args))
        .await
        .unwrap_or_else(|e| panic!("amqprs connects to the broker: {e}"));
    let (recorder, notices) = Recorder::new();
    conn.register_callback(recorder.clone())
        .await
        .expect("connection callback");
    let ch = within("channel.open-ok", conn.open_channel(None))
        .await
        .expect("channel.open");
    ch.register_callback(recorder)
        .await
        .expect("channel callback");
    Watched { conn, ch, notices }
}

impl Watched {
    /// Waits for a channel.close and checks its code and text.
    pub async fn expect_channel_close(&mut self, code: u16, text: &str) {
        match next_notice(&mut self.notices).await {
            Notice::ChannelClose(c, t) => assert_eq!((c, t.as_str()), (code, text)),
            other => panic!("expected channel.close {code} {text:?}, got {other:?}"),
        }
    }

    /// Waits for a connection.close and checks its code and text.
    pub async fn expect_connection_close(&mut self, code: u16, text: &str) {
        match next_notice(&mut self.notices).await {
            Notice::ConnectionClose(c, t) => assert_eq!((c, t.as_str()), (code, text)),
            other => panic!("expected connection.close {code} {text:?}, got {other:?}"),
        }
    }

    pub async fn publish(&self, props: AProps, exchange: &str, routing_key: &str, body: &[u8]) {
        self.ch
            .basic_publish(
                props,
                body.to_vec(),
                amqprs::channel::BasicPublishArguments::new(exchange, routing_key),
            )
            .await
            .expect("basic.publish is sent");
    }

    pub async fn declare_queue(&self, name: &str) {
        within(
            "queue.declare-ok",
            self.ch
                .queue_declare(amqprs::channel::QueueDeclareArguments::new(name)),
        )
        .await
        .expect("queue.declare");
    }

    /// basic.get with manual ack; returns the delivery tag.
    pub async fn get_tag(&self, queue: &str) -> u64 {
        let (get_ok, _, _) = within(
            "basic.get-ok",
            self.ch
                .basic_get(amqprs::channel::BasicGetArguments::new(queue)),
        )
        .await
        .expect("basic.get")
        .expect("a message");
        get_ok.delivery_tag()
    }
}

// ---------------------------------------------------------------------------------------------
// the rmqd binary

/// The rmqd binary: `RMQD_BIN`, or built next to this test the first time it is asked for
/// (cargo takes a while even when it has nothing to do, and holds a lock other tests wait on).
pub fn rmqd_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(bin) = std::env::var_os("RMQD_BIN") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "rmqd", "--bin", "rmqd"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building rmqd failed");
        // target/<profile>/deps/<this test> -> target/<profile>/rmqd
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps");
        profile_dir.join("rmqd")
    })
}

/// `program` without the `RMQD_*` and `RUST_LOG` variables of the environment running the
/// tests: a developer's settings must not change what a test broker does.
pub fn isolated(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("RMQD_") || var == "RUST_LOG" {
            command.env_remove(var);
        }
    }
    command
}

/// The rmqd binary, [`isolated`] from the test's environment.
pub fn rmqd_command() -> Command {
    isolated(rmqd_binary())
}

/// The URL rmqd prints on stdout once it listens, without the newline; `None` when stdout
/// ended first (rmqd exited before listening).
pub fn ready_line(stdout: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read rmqd's stdout");
    line.ends_with('\n').then(|| line.trim_end().to_string())
}

/// The port of a URL rmqd printed: `amqp://user:pass@127.0.0.1:PORT`.
#[track_caller]
pub fn port_of(url: &str) -> u16 {
    url.trim_end()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the URL {url:?} does not end with a port"))
}

/// How `child` exited, if it did within `limit`.
pub fn exited_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How `child` exited after `what`, failing the test if it still runs after [`WAIT`].
#[track_caller]
pub fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    exited_within(child, WAIT).unwrap_or_else(|| panic!("rmqd did not exit after {what}"))
}

/// One ctl command over the admin socket; returns the JSON response.
pub fn ctl(socket: &Path, request: &str) -> String {
    let mut stream =
        std::os::unix::net::UnixStream::connect(socket).expect("the ctl socket accepts");
    stream.write_all(request.as_bytes()).expect("send");
    stream.write_all(b"\n").expect("send");
    let mut response = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut response)
        .expect("response");
    response
}

/// A ctl request that must succeed: its reply starts `{"ok":true`. Returns the reply.
#[track_caller]
pub fn ctl_ok(socket: &Path, request: &str) -> String {
    let reply = ctl(socket, request);
    assert!(
        reply.starts_with(r#"{"ok":true"#),
        "{request} was refused: {reply}"
    );
    reply
}
