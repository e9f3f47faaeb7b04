//! `rpc`: C callers each send a request to a topic exchange (routing key `rpc.request`, with
//! reply_to and correlation_id) and wait for its reply before sending the next. S servers consume
//! the request queue and answer through the default exchange to the caller's exclusive,
//! server-named reply queue. Reports round trips per second, round-trip latency, and the
//! broker's CPU time per round trip (two messages).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amqprs::BasicProperties;
use amqprs::channel::{
    BasicConsumeArguments, BasicPublishArguments, Channel, ConsumerMessage, QueueBindArguments,
    QueueDeclareArguments,
};
use amqprs::connection::Connection;
use tokio::sync::mpsc;

use super::pump::close_all;
use super::{Common, broker_info};
use crate::client::{
    Incidents, cleanup, connect, declare_exchange, declare_queue, open_channel, unique_name,
};
use crate::measure::{Latencies, RssWatch, Window, stamped_body};
use crate::report::Report;
use crate::{Context, Result};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Concurrent callers, each on its own connection with one request outstanding.
    #[arg(long, short = 'c', default_value_t = 1)]
    pub callers: usize,

    /// Servers consuming the request queue, each on its own connection.
    #[arg(long, default_value_t = 1)]
    pub servers: usize,

    /// Request and reply body size in bytes (at least 8).
    #[arg(long, short = 's', default_value_t = 16)]
    pub size: usize,

    /// Seconds a caller waits for a reply before giving up.
    #[arg(long, default_value_t = 5.0)]
    pub reply_timeout: f64,
}

struct Shared {
    round_trips: AtomicU64,
    measuring: AtomicBool,
    stop: AtomicBool,
}

pub async fn run(common: &Common, args: &Args) -> Result<Report> {
    if args.callers == 0 || args.servers == 0 {
        return Err("rpc needs at least one caller and one server".into());
    }
    let exchange = unique_name("rpc.x");
    let requests = unique_name("rpc.requests");
    let incidents = Arc::new(Incidents::default());
    let shared = Arc::new(Shared {
        round_trips: AtomicU64::new(0),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    });

    let setup = async {
        let conn = connect(&common.uri, "rmqd-perf setup", 0, &incidents).await?;
        let ch = open_channel(&conn, &incidents, None).await?;
        declare_exchange(&ch, &exchange, "topic", false).await?;
        declare_queue(&ch, &requests, false).await?;
        ch.queue_bind(QueueBindArguments::new(&requests, &exchange, "rpc.#"))
            .await
            .context("binding the request queue")?;
        let broker = broker_info(&conn);
        let _ = ch.close().await;
        let _ = conn.close().await;
        Ok::<_, String>(broker)
    };
    let broker = setup.await?;

    let outcome = run_calls(common, args, &exchange, &requests, &incidents, &shared).await;
    cleanup(&common.uri, std::slice::from_ref(&requests), &[exchange]).await;
    let (window, mut latencies, round_trips, errors) = outcome?;

    let mut report = common.report("rpc");
    report.broker(broker);
    report
        .param("callers", args.callers)
        .param("servers", args.servers)
        .param("size", args.size.max(crate::measure::STAMP_LEN));
    report
        .num("round_trip_rate", Some(window.rate(round_trips)), "rt/s", 0)
        .count("round_trips", round_trips);
    report.latency("latency", latencies.percentiles());
    report.window(&window, "round_trip", round_trips);
    report.num(
        "broker_cpu_us_per_msg",
        window.broker_cpu_us_per(round_trips * 2),
        "µs",
        2,
    );
    report.incidents(incidents.count(), incidents.first());
    for err in errors {
        report.note(err);
    }
    Ok(report)
}

type Outcome = (Window, Latencies, u64, Vec<String>);

async fn run_calls(
    common: &Common,
    args: &Args,
    exchange: &str,
    requests: &str,
    incidents: &Arc<Incidents>,
    shared: &Arc<Shared>,
) -> Result<Outcome> {
    let mut connections: Vec<Connection> = Vec::new();
    let mut servers = Vec::new();
    for i in 0..args.servers {
        let conn = connect(
            &common.uri,
            &format!("rmqd-perf rpc server {i}"),
            0,
            incidents,
        )
        .await?;
        let ch = open_channel(&conn, incidents, None).await?;
        let mut consume = BasicConsumeArguments::new(requests, &format!("rpc-server-{i}"));
        consume.no_ack = true;
        let (_, rx) = ch
            .basic_consume_rx(consume)
            .await
            .context("basic.consume on the request queue")?;
        servers.push(tokio::spawn(serve(ch, rx)));
        connections.push(conn);
    }

    let mut callers = Vec::new();
    for i in 0..args.callers {
        let conn = connect(
            &common.uri,
            &format!("rmqd-perf rpc caller {i}"),
            0,
            incidents,
        )
        .await?;
        let ch = open_channel(&conn, incidents, None).await?;
        let (reply_queue, _, _) = ch
            .queue_declare(QueueDeclareArguments::exclusive_server_named())
            .await
            .context("declaring the reply queue")?
            .ok_or("queue.declare-ok did not name the reply queue")?;
        let mut consume = BasicConsumeArguments::new(&reply_queue, &format!("rpc-caller-{i}"));
        consume.no_ack = true;
        let (_, rx) = ch
            .basic_consume_rx(consume)
            .await
            .context("basic.consume on the reply queue")?;
        let caller = Caller {
            ch,
            rx,
            exchange: exchange.to_string(),
            reply_queue,
            size: args.size,
            timeout: Duration::from_secs_f64(args.reply_timeout.max(0.001)),
            shared: shared.clone(),
        };
        callers.push(tokio::spawn(caller.run()));
        connections.push(conn);
    }

    tokio::time::sleep(common.warmup).await;
    let n0 = shared.round_trips.load(Ordering::Relaxed);
    let start = common.probe.snapshot();
    shared.measuring.store(true, Ordering::Relaxed);
    let rss = RssWatch::start(&common.probe);
    tokio::time::sleep(common.duration).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let end = common.probe.snapshot();
    let n1 = shared.round_trips.load(Ordering::Relaxed);
    let mut window = Window::between(&start, &end);
    rss.finish(&mut window).await;

    shared.stop.store(true, Ordering::Relaxed);
    let mut latencies = Latencies::default();
    let mut errors = Vec::new();
    for (i, task) in callers.into_iter().enumerate() {
        match task.await {
            Ok(Ok(lat)) => latencies.merge(lat),
            Ok(Err(err)) => errors.push(format!("caller {i}: {err}")),
            Err(err) => errors.push(format!("caller {i} panicked: {err}")),
        }
    }
    for server in servers {
        server.abort();
    }
    close_all(connections).await;
    Ok((window, latencies, n1 - n0, errors))
}

/// Answers each request to its reply_to through the default exchange, echoing the body (and
/// so the caller's timestamp) and the correlation id.
async fn serve(ch: Channel, mut rx: mpsc::UnboundedReceiver<ConsumerMessage>) {
    while let Some(msg) = rx.recv().await {
        let Some(props) = msg.basic_properties else {
            continue;
        };
        let Some(reply_to) = props.reply_to() else {
            continue;
        };
        let mut reply = BasicProperties::default();
        if let Some(id) = props.correlation_id() {
            reply.with_correlation_id(id);
        }
        let body = msg.content.unwrap_or_default();
        let args = BasicPublishArguments::new("", reply_to);
        if ch.basic_publish(reply.finish(), body, args).await.is_err() {
            break;
        }
    }
}

struct Caller {
    ch: Channel,
    rx: mpsc::UnboundedReceiver<ConsumerMessage>,
    exchange: String,
    reply_queue: String,
    size: usize,
    timeout: Duration,
    shared: Arc<Shared>,
}

impl Caller {
    async fn run(mut self) -> Result<Latencies> {
        let mut latencies = Latencies::default();
        let mut id: u64 = 0;
        while !self.shared.stop.load(Ordering::Relaxed) {
            id += 1;
            let correlation = id.to_string();
            let props = BasicProperties::default()
                .with_reply_to(&self.reply_queue)
                .with_correlation_id(&correlation)
                .finish();
            let sent = Instant::now();
            self.ch
                .basic_publish(
                    props,
                    stamped_body(self.size),
                    BasicPublishArguments::new(&self.exchange, "rpc.request"),
                )
                .await
                .context("publishing a request")?;
            // Wait for the reply with this correlation id (a late reply to an earlier, timed-out
            // request is skipped).
            loop {
                let msg = tokio::time::timeout(self.timeout, self.rx.recv())
                    .await
                    .map_err(|_| format!("no reply within {:?}", self.timeout))?
                    .ok_or("the reply consumer was closed")?;
                let matches = msg
                    .basic_properties
                    .as_ref()
                    .and_then(|p| p.correlation_id())
                    .is_some_and(|c| *c == correlation);
                if matches {
                    break;
                }
            }
            if self.shared.measuring.load(Ordering::Relaxed) {
                latencies.record(sent.elapsed());
            }
            self.shared.round_trips.fetch_add(1, Ordering::Relaxed);
        }
        Ok(latencies)
    }
}
