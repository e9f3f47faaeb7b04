//! amqprs scenarios for the wire corpus in `codec/tests/corpus/`.
//!
//! Not a test: it drives a real RabbitMQ through `codec/tests/corpus/capture.py`
//! so the bytes amqprs and the broker exchange can be recorded.
//!
//! ```text
//! cargo run -p rmqd-tests --example capture_amqprs -- <port> [scenario ...]
//! ```
//!
//! Scenarios (default: all, in this order): `basic`, `confirm`, `tx`. Each
//! one is a separate connection, opened only after the previous one is fully
//! closed, so the proxy can name captures by accept order.

use std::time::Duration;

use amqprs::callbacks::ChannelCallback;
use amqprs::channel::{
    BasicAckArguments, BasicCancelArguments, BasicConsumeArguments, BasicGetArguments,
    BasicNackArguments, BasicPublishArguments, BasicQosArguments, BasicRejectArguments, Channel,
    ConfirmSelectArguments, ExchangeBindArguments, ExchangeDeclareArguments,
    ExchangeDeleteArguments, ExchangeUnbindArguments, QueueBindArguments, QueueDeclareArguments,
    QueueDeleteArguments, QueuePurgeArguments, QueueUnbindArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{
    Ack, BasicProperties, ByteArray, Cancel, CloseChannel, DecimalValue, FieldArray, FieldTable,
    FieldValue, Nack, Return,
};
use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::time::timeout;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;
type AmqpResult<T> = std::result::Result<T, amqprs::error::Error>;

/// Fixed rather than `now()`, so re-captures only differ where the broker or
/// amqprs itself varies (generated names, `HashMap` order of table entries).
const FIXED_TS: u64 = 1_700_000_000;
/// Larger than RabbitMQ's default frame_max (131072), so three body frames.
const LARGE_LEN: usize = 300 * 1024;
/// Bounds every wait, so a protocol surprise fails the run instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

fn large_body() -> Vec<u8> {
    (0..LARGE_LEN)
        .map(|i| ((i * 7 + i / 251) & 0xFF) as u8)
        .collect()
}

fn put(t: &mut FieldTable, k: &str, v: FieldValue) {
    t.insert(k.try_into().unwrap(), v);
}

fn long_str(s: &str) -> FieldValue {
    FieldValue::S(s.try_into().unwrap())
}

fn array(values: Vec<FieldValue>) -> FieldValue {
    FieldValue::A(FieldArray::try_from(values).unwrap())
}

/// One entry for every field-value variant amqprs can put on the wire,
/// including the RabbitMQ-specific `s` (i16) and `x` (byte array) tags.
fn rich_table() -> FieldTable {
    let mut inner = FieldTable::new();
    put(&mut inner, "deep", FieldValue::I(1));
    put(&mut inner, "s", long_str("x"));
    let mut nested = FieldTable::new();
    put(&mut nested, "inner", FieldValue::F(inner));
    put(
        &mut nested,
        "arr",
        array(vec![FieldValue::I(1), long_str("two"), FieldValue::t(true)]),
    );

    let mut t = FieldTable::new();
    put(&mut t, "bool-t", FieldValue::t(true));
    put(&mut t, "bool-f", FieldValue::t(false));
    put(&mut t, "i8", FieldValue::b(-8));
    put(&mut t, "u8", FieldValue::B(200));
    put(&mut t, "i16", FieldValue::s(-300));
    put(&mut t, "u16", FieldValue::u(60_000));
    put(&mut t, "i32", FieldValue::I(-70_000));
    put(&mut t, "u32", FieldValue::i(4_000_000_000));
    put(&mut t, "i64", FieldValue::l(-(1 << 40)));
    put(&mut t, "f32", FieldValue::f(1.5));
    put(&mut t, "f64", FieldValue::d(-2.25));
    put(&mut t, "decimal", FieldValue::D(DecimalValue::new(2, 314)));
    put(&mut t, "str", long_str("hello"));
    put(&mut t, "utf8", long_str("h\u{e9}llo \u{2713}"));
    put(&mut t, "empty-str", long_str(""));
    put(&mut t, "timestamp", FieldValue::T(FIXED_TS));
    put(&mut t, "void", FieldValue::V);
    put(
        &mut t,
        "bytes",
        FieldValue::x(ByteArray::try_from(vec![0, 1, 0xfe, 0xff]).unwrap()),
    );
    put(&mut t, "empty-table", FieldValue::F(FieldTable::new()));
    put(&mut t, "empty-array", array(vec![]));
    put(&mut t, "nested", FieldValue::F(nested));
    put(
        &mut t,
        "array",
        array(vec![
            FieldValue::b(-1),
            FieldValue::u(7),
            FieldValue::l(1 << 40),
            FieldValue::d(0.5),
            long_str("s"),
            FieldValue::V,
            array(vec![FieldValue::I(2), array(vec![])]),
            FieldValue::F(FieldTable::new()),
        ]),
    );
    t
}

/// All 14 basic properties set, so every property-flag bit is 1.
fn all_properties(message_id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_content_type("text/plain")
        .with_content_encoding("utf-8")
        .with_headers(rich_table())
        .with_delivery_mode(2)
        .with_priority(5)
        .with_correlation_id("corr-1")
        .with_reply_to("corpus.reply")
        .with_expiration("60000")
        .with_message_id(message_id)
        .with_timestamp(FIXED_TS)
        .with_message_type("corpus.type")
        // RabbitMQ closes the channel if user-id differs from the login user.
        .with_user_id("guest")
        .with_app_id("corpus-amqprs")
        .with_cluster_id("corpus-cluster")
        .finish()
}

/// Asynchronous channel events, forwarded so the scenario can await them in
/// order instead of racing the dispatcher task.
#[derive(Debug)]
enum Event {
    Ack { tag: u64, multiple: bool },
    Nack { tag: u64, multiple: bool },
    Return { code: u16 },
}

struct Forward(mpsc::UnboundedSender<Event>);

#[async_trait]
impl ChannelCallback for Forward {
    async fn close(&mut self, _: &Channel, close: CloseChannel) -> AmqpResult<()> {
        eprintln!("unexpected channel.close from server: {close}");
        Ok(())
    }
    async fn cancel(&mut self, _: &Channel, _: Cancel) -> AmqpResult<()> {
        Ok(())
    }
    async fn flow(&mut self, _: &Channel, active: bool) -> AmqpResult<bool> {
        Ok(active)
    }
    async fn publish_ack(&mut self, _: &Channel, ack: Ack) {
        let _ = self.0.send(Event::Ack {
            tag: ack.delivery_tag(),
            multiple: ack.mutiple(),
        });
    }
    async fn publish_nack(&mut self, _: &Channel, nack: Nack) {
        let _ = self.0.send(Event::Nack {
            tag: nack.delivery_tag(),
            multiple: nack.multiple(),
        });
    }
    async fn publish_return(&mut self, _: &Channel, ret: Return, _: BasicProperties, _: Vec<u8>) {
        let _ = self.0.send(Event::Return {
            code: ret.reply_code(),
        });
    }
}

async fn events(ch: &Channel) -> Result<mpsc::UnboundedReceiver<Event>> {
    let (tx, rx) = mpsc::unbounded_channel();
    ch.register_callback(Forward(tx)).await?;
    Ok(rx)
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> Result<T> {
    Ok(timeout(WAIT, rx.recv())
        .await?
        .ok_or("event stream ended")?)
}

async fn open(port: u16, scenario: &str) -> Result<Connection> {
    let args = OpenConnectionArguments::new("127.0.0.1", port, "guest", "guest")
        .connection_name(&format!("corpus-amqprs-{scenario}"))
        // amqprs cannot turn heartbeats off: with 0 it takes the server's
        // value (60s). Scenarios finish well inside the 30s send interval.
        .heartbeat(0)
        .finish();
    Ok(Connection::open(&args).await?)
}

fn publish(exchange: &str, routing_key: &str) -> BasicPublishArguments {
    BasicPublishArguments::new(exchange, routing_key)
}

async fn scenario_basic(port: u16) -> Result<()> {
    let conn = open(port, "basic").await?;
    let ch = conn.open_channel(None).await?;
    let mut ev = events(&ch).await?;

    // --- topology, with argument tables of every type ---------------------
    ch.exchange_declare(ExchangeDeclareArguments::new("corpus.rs.fanout", "fanout"))
        .await?;
    let mut ae = FieldTable::new();
    put(&mut ae, "alternate-exchange", long_str("corpus.rs.fanout"));
    ch.exchange_declare(
        ExchangeDeclareArguments::new("corpus.rs.topic", "topic")
            .durable(true)
            .arguments(ae)
            .finish(),
    )
    .await?;
    ch.exchange_declare(
        ExchangeDeclareArguments::new("corpus.rs.headers", "headers")
            .arguments(rich_table())
            .finish(),
    )
    .await?;
    // no-wait: the broker sends nothing back for these
    ch.exchange_declare(
        ExchangeDeclareArguments::new("corpus.rs.nowait", "direct")
            .auto_delete(true)
            .no_wait(true)
            .finish(),
    )
    .await?;
    ch.exchange_declare(
        ExchangeDeclareArguments::new("corpus.rs.topic", "topic")
            .passive(true)
            .finish(),
    )
    .await?;
    let mut e2e = FieldTable::new();
    put(&mut e2e, "x-note", long_str("e2e"));
    ch.exchange_bind(
        ExchangeBindArguments::new("corpus.rs.headers", "corpus.rs.topic", "a.#")
            .arguments(e2e.clone())
            .finish(),
    )
    .await?;

    let mut qargs = rich_table();
    put(&mut qargs, "x-message-ttl", FieldValue::l(60_000));
    put(&mut qargs, "x-expires", FieldValue::I(600_000));
    put(&mut qargs, "x-max-length", FieldValue::i(1000));
    put(&mut qargs, "x-max-priority", FieldValue::B(10));
    put(&mut qargs, "x-queue-mode", long_str("lazy"));
    ch.queue_declare(
        QueueDeclareArguments::new("corpus.rs.work")
            .exclusive(true)
            .arguments(qargs)
            .finish(),
    )
    .await?;
    ch.queue_declare(
        QueueDeclareArguments::new("corpus.rs.work")
            .passive(true)
            .finish(),
    )
    .await?;
    let (anon, _, _) = ch
        .queue_declare(QueueDeclareArguments::exclusive_server_named())
        .await?
        .ok_or("declare-ok expected")?;
    ch.queue_declare(
        QueueDeclareArguments::transient_autodelete("corpus.rs.nowait")
            .no_wait(true)
            .finish(),
    )
    .await?;

    let mut hbind = FieldTable::new();
    put(&mut hbind, "x-match", long_str("all"));
    put(&mut hbind, "format", long_str("pdf"));
    put(&mut hbind, "n", FieldValue::I(42));
    ch.queue_bind(
        QueueBindArguments::new("corpus.rs.work", "corpus.rs.headers", "")
            .arguments(hbind.clone())
            .finish(),
    )
    .await?;
    ch.queue_bind(QueueBindArguments::new(&anon, "corpus.rs.topic", "a.*.c"))
        .await?;
    ch.queue_bind(
        QueueBindArguments::new("corpus.rs.nowait", "corpus.rs.fanout", "")
            .no_wait(true)
            .finish(),
    )
    .await?;

    // --- publishing ---------------------------------------------------------
    ch.basic_qos(BasicQosArguments::new(0, 10, false)).await?;
    let large = large_body();
    ch.basic_publish(
        all_properties("rs-1"),
        "hello from amqprs \u{2713}".into(),
        publish("", "corpus.rs.work"),
    )
    .await?;
    ch.basic_publish(
        BasicProperties::default(),
        Vec::new(),
        publish("", "corpus.rs.work"),
    )
    .await?;
    ch.basic_publish(
        BasicProperties::default()
            .with_content_type("application/octet-stream")
            .finish(),
        large.clone(),
        publish("", "corpus.rs.work"),
    )
    .await?;
    let mut hdrs = FieldTable::new();
    put(&mut hdrs, "format", long_str("pdf"));
    put(&mut hdrs, "n", FieldValue::I(42));
    // topic -> e2e -> headers -> corpus.rs.work, plus a copy to the anon queue
    ch.basic_publish(
        BasicProperties::default()
            .with_headers(hdrs)
            .with_persistence(false)
            .finish(),
        b"routed".to_vec(),
        publish("corpus.rs.topic", "a.b.c"),
    )
    .await?;
    ch.basic_publish(
        BasicProperties::default().with_message_id("ret-1").finish(),
        b"returned".to_vec(),
        publish("", "corpus.rs.nowhere").mandatory(true).finish(),
    )
    .await?;
    match next(&mut ev).await? {
        Event::Return { code: 312 } => {}
        other => return Err(format!("expected basic.return, got {other:?}").into()),
    }

    // --- get --------------------------------------------------------------
    let (get_ok, props, body) = ch
        .basic_get(BasicGetArguments::new("corpus.rs.work"))
        .await?
        .ok_or("get-ok expected")?;
    assert!(body.starts_with(b"hello"), "first message has priority 5");
    assert_eq!(props.user_id().map(String::as_str), Some("guest"));
    ch.basic_ack(BasicAckArguments::new(get_ok.delivery_tag(), false))
        .await?;

    // --- consume: ack / nack / reject / recover -----------------------------
    let consume = BasicConsumeArguments::new("corpus.rs.work", "corpus-rs-ctag")
        .manual_ack(true)
        .finish();
    let (ctag, mut rx) = ch.basic_consume_rx(consume).await?;
    let mut seen_large = false;
    let mut nacked = false;
    let mut recovered = false;
    loop {
        let msg = next(&mut rx).await?;
        let deliver = msg.deliver.ok_or("deliver")?;
        let body = msg.content.ok_or("content")?;
        let tag = deliver.delivery_tag();
        if body.is_empty() {
            ch.basic_ack(BasicAckArguments::new(tag, false)).await?;
        } else if body == large {
            seen_large = true;
            ch.basic_ack(BasicAckArguments::new(tag, false)).await?;
        } else if body == b"routed" && !nacked {
            nacked = true;
            // requeue: it comes back with redelivered=1
            ch.basic_nack(BasicNackArguments::new(tag, false, true))
                .await?;
        } else if body == b"routed" && !recovered {
            assert!(deliver.redelivered());
            recovered = true;
            // leave it unacked and have the broker resend it
            ch.basic_recover(true).await?;
        } else if body == b"routed" {
            ch.basic_reject(BasicRejectArguments::new(tag, false))
                .await?;
            break;
        }
    }
    assert!(seen_large);
    ch.basic_cancel(BasicCancelArguments::new(&ctag)).await?;
    assert!(
        ch.basic_get(BasicGetArguments::new("corpus.rs.work"))
            .await?
            .is_none(),
        "get-empty"
    );

    // --- teardown -----------------------------------------------------------
    let (_, _, body) = ch
        .basic_get(BasicGetArguments::new(&anon).no_ack(true).finish())
        .await?
        .ok_or("anon copy")?;
    assert_eq!(body, b"routed");
    ch.basic_publish(
        BasicProperties::default(),
        b"purge-me".to_vec(),
        publish("", "corpus.rs.work"),
    )
    .await?;
    ch.queue_purge(QueuePurgeArguments::new("corpus.rs.work"))
        .await?;
    ch.queue_unbind(
        QueueUnbindArguments::new("corpus.rs.work", "corpus.rs.headers", "")
            .arguments(hbind)
            .finish(),
    )
    .await?;
    ch.exchange_unbind(
        ExchangeUnbindArguments::new("corpus.rs.headers", "corpus.rs.topic", "a.#")
            .arguments(e2e)
            .finish(),
    )
    .await?;
    ch.queue_delete(
        QueueDeleteArguments::new("corpus.rs.work")
            .if_unused(true)
            .if_empty(true)
            .finish(),
    )
    .await?;
    ch.queue_delete(QueueDeleteArguments::new(&anon)).await?;
    ch.queue_delete(QueueDeleteArguments::new("corpus.rs.nowait"))
        .await?;
    ch.exchange_delete(ExchangeDeleteArguments::new("corpus.rs.headers"))
        .await?;
    ch.exchange_delete(
        ExchangeDeleteArguments::new("corpus.rs.topic")
            .if_unused(true)
            .finish(),
    )
    .await?;
    ch.exchange_delete(ExchangeDeleteArguments::new("corpus.rs.fanout"))
        .await?;
    ch.exchange_delete(ExchangeDeleteArguments::new("corpus.rs.nowait"))
        .await?;

    ch.close().await?;
    conn.close().await?;
    Ok(())
}

async fn scenario_confirm(port: u16) -> Result<()> {
    let conn = open(port, "confirm").await?;
    let ch = conn.open_channel(None).await?;
    let mut ev = events(&ch).await?;
    ch.confirm_select(ConfirmSelectArguments::default()).await?;
    ch.queue_declare(
        QueueDeclareArguments::new("corpus.rs.confirm")
            .exclusive(true)
            .finish(),
    )
    .await?;
    let mut full = FieldTable::new();
    put(&mut full, "x-max-length", FieldValue::I(1));
    put(&mut full, "x-overflow", long_str("reject-publish"));
    ch.queue_declare(
        QueueDeclareArguments::new("corpus.rs.full")
            .exclusive(true)
            .arguments(full)
            .finish(),
    )
    .await?;

    // Back-to-back publishes, not awaited one at a time, so the broker is
    // free to coalesce confirms into multiple=1 acks.
    const N: u64 = 5;
    for i in 1..=N {
        let props = all_properties(&format!("rs-c{i}"));
        ch.basic_publish(
            props,
            format!("c{i}").into_bytes(),
            publish("", "corpus.rs.confirm"),
        )
        .await?;
    }
    let mut confirmed = 0;
    while confirmed < N {
        match next(&mut ev).await? {
            Event::Ack { tag, multiple } => {
                eprintln!("ack tag={tag} multiple={multiple}");
                confirmed = tag;
            }
            other => return Err(format!("expected basic.ack, got {other:?}").into()),
        }
    }

    ch.basic_publish(
        BasicProperties::default(),
        b"unroutable".to_vec(),
        publish("", "corpus.rs.nowhere").mandatory(true).finish(),
    )
    .await?;
    match (next(&mut ev).await?, next(&mut ev).await?) {
        (Event::Return { code: 312 }, Event::Ack { tag, .. }) if tag == N + 1 => {}
        other => return Err(format!("expected return then ack, got {other:?}").into()),
    }
    ch.basic_publish(
        BasicProperties::default(),
        b"fits".to_vec(),
        publish("", "corpus.rs.full"),
    )
    .await?;
    ch.basic_publish(
        BasicProperties::default(),
        b"overflows".to_vec(),
        publish("", "corpus.rs.full"),
    )
    .await?;
    let mut nacked = false;
    while !nacked {
        match next(&mut ev).await? {
            Event::Ack { .. } => {}
            Event::Nack { tag, multiple } => {
                eprintln!("nack tag={tag} multiple={multiple}");
                nacked = tag == N + 3;
            }
            other => return Err(format!("unexpected {other:?}").into()),
        }
    }

    ch.close().await?;
    conn.close().await?;
    Ok(())
}

async fn scenario_tx(port: u16) -> Result<()> {
    let conn = open(port, "tx").await?;
    let plain = conn.open_channel(None).await?;
    // The highest channel number RabbitMQ allows (channel_max 2047).
    let tx = conn.open_channel(Some(2047)).await?;
    plain
        .queue_declare(
            QueueDeclareArguments::new("corpus.rs.tx")
                .exclusive(true)
                .finish(),
        )
        .await?;

    tx.tx_select().await?;
    tx.basic_publish(
        BasicProperties::default(),
        b"committed".to_vec(),
        publish("", "corpus.rs.tx"),
    )
    .await?;
    tx.tx_commit().await?;
    tx.basic_publish(
        BasicProperties::default(),
        b"rolled-back".to_vec(),
        publish("", "corpus.rs.tx"),
    )
    .await?;
    tx.tx_rollback().await?;

    let (get_ok, _, body) = tx
        .basic_get(BasicGetArguments::new("corpus.rs.tx"))
        .await?
        .ok_or("get-ok")?;
    assert_eq!(body, b"committed");
    tx.basic_ack(BasicAckArguments::new(get_ok.delivery_tag(), false))
        .await?;
    tx.tx_commit().await?;
    assert!(
        plain
            .basic_get(BasicGetArguments::new("corpus.rs.tx"))
            .await?
            .is_none()
    );

    tx.close().await?;
    plain.close().await?;
    conn.close().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .ok_or("usage: capture_amqprs <port> [basic|confirm|tx ...]")?
        .parse()?;
    let mut scenarios: Vec<String> = args.collect();
    if scenarios.is_empty() {
        scenarios = ["basic", "confirm", "tx"].map(String::from).to_vec();
    }
    for s in &scenarios {
        match s.as_str() {
            "basic" => scenario_basic(port).await?,
            "confirm" => scenario_confirm(port).await?,
            "tx" => scenario_tx(port).await?,
            other => return Err(format!("unknown scenario {other:?}").into()),
        }
        eprintln!("amqprs: {s} ok");
    }
    Ok(())
}
