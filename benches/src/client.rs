//! Talking to the broker through amqprs: the connection URI, connecting, watching a channel for
//! closes and cancels, and keeping a window of unconfirmed publishes.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amqprs::callbacks::{ChannelCallback, ConnectionCallback};
use amqprs::channel::{
    Channel, ConfirmSelectArguments, ExchangeDeclareArguments, ExchangeDeleteArguments,
    QueueDeclareArguments, QueueDeleteArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{Ack, BasicProperties, Cancel, Close, CloseChannel, Nack, Return};
use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::{Context, Result};

/// What amqprs callbacks return.
type AmqpResult<T> = std::result::Result<T, amqprs::error::Error>;

/// Where and as whom to connect: `amqp://user:pass@host:port/vhost`, vhost percent-encoded
/// (`%2f` is `/`), as RabbitMQ's URI spec. Only the plain `amqp` scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUri {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub vhost: String,
}

impl BrokerUri {
    pub fn parse(uri: &str) -> Result<Self> {
        let rest = uri.strip_prefix("amqp://").ok_or_else(|| {
            format!("unsupported URI {uri:?}: expected amqp://user:pass@host:port/vhost")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (percent_decode(u)?, percent_decode(p)?),
                None => (percent_decode(info)?, String::new()),
            },
            None => ("guest".to_string(), "guest".to_string()),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| format!("bad port {p:?} in URI {uri:?}"))?,
            ),
            None => (hostport.to_string(), 5672),
        };
        if host.is_empty() {
            return Err(format!("no host in URI {uri:?}"));
        }
        let vhost = match path {
            None | Some("") => "/".to_string(),
            Some(p) => percent_decode(p)?,
        };
        Ok(BrokerUri {
            host,
            port,
            user,
            password,
            vhost,
        })
    }

    /// The same broker on another port (the startup scenario picks a fresh one per spawn).
    pub fn with_port(&self, port: u16) -> Self {
        BrokerUri {
            port,
            ..self.clone()
        }
    }
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("truncated %-escape in {s:?}"))?;
            let byte = u8::from_str_radix(hex, 16)
                .map_err(|_| format!("bad %-escape {hex:?} in {s:?}"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

/// Something the broker did that a scenario did not ask for: a channel or connection closed by
/// the broker, a consumer cancelled, a publish returned or nacked. Scenarios report these rather
/// than failing at the first one, and the report shows the first message.
#[derive(Default)]
pub struct Incidents {
    count: AtomicU64,
    first: Mutex<Option<String>>,
    blocked: AtomicU64,
}

impl Incidents {
    pub fn record(&self, what: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(what);
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn first(&self) -> Option<String> {
        self.first.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many times a connection was blocked (RabbitMQ's memory or disk alarm, rmqd's
    /// memory watermark).
    pub fn blocked(&self) -> u64 {
        self.blocked.load(Ordering::Relaxed)
    }
}

/// Connects, names the connection and watches it for closes and `connection.blocked`.
pub async fn connect(
    uri: &BrokerUri,
    name: &str,
    heartbeat: u16,
    incidents: &Arc<Incidents>,
) -> Result<Connection> {
    let args = OpenConnectionArguments::new(&uri.host, uri.port, &uri.user, &uri.password)
        .virtual_host(&uri.vhost)
        .connection_name(name)
        .heartbeat(heartbeat)
        .finish();
    let conn = Connection::open(&args)
        .await
        .context(format_args!("connecting to {}:{}", uri.host, uri.port))?;
    conn.register_callback(ConnectionEvents {
        incidents: incidents.clone(),
    })
    .await
    .context("registering the connection callback")?;
    Ok(conn)
}

/// Opens a channel watched for closes, cancels and returns, and for publisher confirms if
/// `confirms` is given (which also puts the channel in confirm mode).
pub async fn open_channel(
    conn: &Connection,
    incidents: &Arc<Incidents>,
    confirms: Option<Arc<ConfirmWindow>>,
) -> Result<Channel> {
    let ch = conn.open_channel(None).await.context("opening a channel")?;
    let confirming = confirms.is_some();
    ch.register_callback(ChannelEvents {
        incidents: incidents.clone(),
        confirms,
    })
    .await
    .context("registering the channel callback")?;
    if confirming {
        ch.confirm_select(ConfirmSelectArguments::default())
            .await
            .context("confirm.select")?;
    }
    Ok(ch)
}

struct ConnectionEvents {
    incidents: Arc<Incidents>,
}

#[async_trait]
impl ConnectionCallback for ConnectionEvents {
    async fn close(&mut self, _conn: &Connection, close: Close) -> AmqpResult<()> {
        self.incidents.record(format!(
            "broker closed a connection: {} {}",
            close.reply_code(),
            close.reply_text()
        ));
        Ok(())
    }

    async fn blocked(&mut self, _conn: &Connection, _reason: String) {
        self.incidents.blocked.fetch_add(1, Ordering::Relaxed);
    }

    async fn unblocked(&mut self, _conn: &Connection) {}

    async fn secret_updated(&mut self, _conn: &Connection) {}
}

struct ChannelEvents {
    incidents: Arc<Incidents>,
    confirms: Option<Arc<ConfirmWindow>>,
}

#[async_trait]
impl ChannelCallback for ChannelEvents {
    async fn close(&mut self, _ch: &Channel, close: CloseChannel) -> AmqpResult<()> {
        self.incidents.record(format!(
            "broker closed a channel: {} {}",
            close.reply_code(),
            close.reply_text()
        ));
        Ok(())
    }

    async fn cancel(&mut self, _ch: &Channel, cancel: Cancel) -> AmqpResult<()> {
        self.incidents.record(format!(
            "broker cancelled consumer {}",
            cancel.consumer_tag()
        ));
        Ok(())
    }

    async fn flow(&mut self, _ch: &Channel, active: bool) -> AmqpResult<bool> {
        Ok(active)
    }

    async fn publish_ack(&mut self, _ch: &Channel, ack: Ack) {
        if let Some(confirms) = &self.confirms {
            confirms.settle(ack.delivery_tag(), ack.mutiple(), false);
        }
    }

    async fn publish_nack(&mut self, _ch: &Channel, nack: Nack) {
        if let Some(confirms) = &self.confirms {
            confirms.settle(nack.delivery_tag(), nack.multiple(), true);
        }
    }

    async fn publish_return(
        &mut self,
        _ch: &Channel,
        ret: Return,
        _props: BasicProperties,
        _content: Vec<u8>,
    ) {
        self.incidents.record(format!(
            "broker returned a message: {} {}",
            ret.reply_code(),
            ret.reply_text()
        ));
    }
}

/// At most `window` publishes awaiting their confirm on one channel. Delivery tags of a confirm
/// channel count 1, 2, 3… from `confirm.select`, one per publish.
pub struct ConfirmWindow {
    permits: Semaphore,
    state: Mutex<ConfirmState>,
    acked: AtomicU64,
    nacked: AtomicU64,
}

#[derive(Default)]
struct ConfirmState {
    next_tag: u64,
    unconfirmed: BTreeSet<u64>,
}

impl ConfirmWindow {
    pub fn new(window: usize) -> Arc<Self> {
        Arc::new(ConfirmWindow {
            permits: Semaphore::new(window.max(1)),
            state: Mutex::new(ConfirmState {
                next_tag: 1,
                unconfirmed: BTreeSet::new(),
            }),
            acked: AtomicU64::new(0),
            nacked: AtomicU64::new(0),
        })
    }

    /// Waits for room in the window and takes the next delivery tag. Call it just before each
    /// `basic_publish` on the channel, from one task.
    pub async fn reserve(&self) -> Result<u64> {
        self.permits
            .acquire()
            .await
            .map_err(|_| "the confirm window was closed".to_string())?
            .forget();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let tag = state.next_tag;
        state.next_tag += 1;
        state.unconfirmed.insert(tag);
        Ok(tag)
    }

    fn settle(&self, tag: u64, multiple: bool, nack: bool) {
        let settled = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if multiple {
                let rest = state.unconfirmed.split_off(&(tag + 1));
                let settled = state.unconfirmed.len();
                state.unconfirmed = rest;
                settled
            } else {
                usize::from(state.unconfirmed.remove(&tag))
            }
        };
        let counter = if nack { &self.nacked } else { &self.acked };
        counter.fetch_add(settled as u64, Ordering::Relaxed);
        self.permits.add_permits(settled);
    }

    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    pub fn nacked(&self) -> u64 {
        self.nacked.load(Ordering::Relaxed)
    }

    pub fn unconfirmed(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unconfirmed
            .len()
    }

    /// Waits until every publish so far is confirmed, or `timeout` passes (then false).
    pub async fn wait_all(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.unconfirmed() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// A name no other run uses: `rmqd-perf.<what>.<pid>.<millis>`, so that runs never collide and
/// leftovers of a killed run are easy to recognise.
pub fn unique_name(what: &str) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("rmqd-perf.{what}.{}.{millis}", std::process::id())
}

/// Declares a queue: durable or not, never exclusive or auto-delete (other connections consume
/// it, and the scenario deletes it at the end).
pub async fn declare_queue(ch: &Channel, name: &str, durable: bool) -> Result<()> {
    ch.queue_declare(QueueDeclareArguments::new(name).durable(durable).finish())
        .await
        .context(format_args!("declaring queue {name}"))?;
    Ok(())
}

/// How many messages `name` holds (a passive queue.declare).
pub async fn queue_depth(ch: &Channel, name: &str) -> Result<u32> {
    let reply = ch
        .queue_declare(QueueDeclareArguments::new(name).passive(true).finish())
        .await
        .context(format_args!("passive declare of queue {name}"))?;
    Ok(reply.map(|(_, messages, _)| messages).unwrap_or(0))
}

pub async fn declare_exchange(ch: &Channel, name: &str, kind: &str, durable: bool) -> Result<()> {
    let mut args = ExchangeDeclareArguments::new(name, kind);
    args.durable = durable;
    ch.exchange_declare(args)
        .await
        .context(format_args!("declaring {kind} exchange {name}"))
}

/// Deletes what a scenario declared, on a fresh connection (the scenario's own may have been
/// closed by the broker). Failures are printed, not fatal: the measurement is already done.
pub async fn cleanup(uri: &BrokerUri, queues: &[String], exchanges: &[String]) {
    if queues.is_empty() && exchanges.is_empty() {
        return;
    }
    let incidents = Arc::new(Incidents::default());
    let work = async {
        let conn = connect(uri, "rmqd-perf cleanup", 0, &incidents).await?;
        let ch = open_channel(&conn, &incidents, None).await?;
        for q in queues {
            ch.queue_delete(QueueDeleteArguments::new(q))
                .await
                .context(format_args!("deleting queue {q}"))?;
        }
        for x in exchanges {
            ch.exchange_delete(ExchangeDeleteArguments::new(x))
                .await
                .context(format_args!("deleting exchange {x}"))?;
        }
        let _ = ch.close().await;
        let _ = conn.close().await;
        Ok::<(), String>(())
    };
    match tokio::time::timeout(Duration::from_secs(120), work).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => eprintln!("warning: cleanup failed: {err}"),
        Err(_) => eprintln!("warning: cleanup timed out after 120 s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uris() {
        let uri = BrokerUri::parse("amqp://guest:guest@127.0.0.1:5672/%2f").expect("parses");
        assert_eq!(
            uri,
            BrokerUri {
                host: "127.0.0.1".into(),
                port: 5672,
                user: "guest".into(),
                password: "guest".into(),
                vhost: "/".into(),
            }
        );
        let uri = BrokerUri::parse("amqp://localhost").expect("parses");
        assert_eq!(
            (uri.port, uri.vhost.as_str(), uri.user.as_str()),
            (5672, "/", "guest")
        );
        let uri = BrokerUri::parse("amqp://u:p%40ss@h:1/v1").expect("parses");
        assert_eq!(
            (uri.password.as_str(), uri.vhost.as_str(), uri.port),
            ("p@ss", "v1", 1)
        );
        assert!(BrokerUri::parse("amqps://h").is_err());
        assert!(BrokerUri::parse("amqp://h:x/").is_err());
    }
}
