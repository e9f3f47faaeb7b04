//! The producer/consumer engine shared by throughput, fanout and topic: producers publish
//! timestamped bodies to an exchange, one consumer per listed queue counts deliveries and records
//! their end-to-end latency, and the broker is sampled over a measured window.
//!
//! Every producer and every consumer has its own connection, as RabbitMQ's PerfTest does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use amqprs::BasicProperties;
use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicPublishArguments, BasicQosArguments, Channel,
    ConsumerMessage,
};
use amqprs::connection::Connection;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Common, broker_info};
use crate::client::{ConfirmWindow, Incidents, connect, open_channel};
use crate::measure::{Latencies, Rng, RssWatch, Window, age_us, stamped_body};
use crate::report::{BrokerInfo, Report};
use crate::{Context, Result};

/// How messages are published and consumed: flags shared by the pumping scenarios.
#[derive(Debug, Clone, clap::Args)]
pub struct FlowArgs {
    /// Body size in bytes (at least 8: a body starts with its publish time).
    #[arg(long, short = 's', default_value_t = 16)]
    pub size: usize,

    /// Publisher confirms, with at most this many unconfirmed messages per producer; 0 publishes
    /// without confirms.
    #[arg(long, default_value_t = 0)]
    pub confirm: usize,

    /// Consumers acknowledge deliveries with basic.ack (default: auto-ack, no_ack=true).
    #[arg(long)]
    pub manual_ack: bool,

    /// basic.qos prefetch count per consumer with --manual-ack (0: unlimited).
    #[arg(long, default_value_t = 100)]
    pub prefetch: u16,

    /// With --manual-ack, acknowledge every N deliveries at once (multiple=true).
    #[arg(long, default_value_t = 1)]
    pub multi_ack_every: u64,

    /// Persistent messages (delivery_mode 2) into durable queues and exchanges.
    #[arg(long)]
    pub persistent: bool,

    /// Publish at most this many messages per second per producer (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
}

impl FlowArgs {
    pub fn describe(&self, report: &mut Report) {
        report
            .param("size", self.size.max(crate::measure::STAMP_LEN))
            .param("confirm_window", self.confirm)
            .param("ack", if self.manual_ack { "manual" } else { "auto" })
            .param("persistent", self.persistent);
        if self.manual_ack {
            report
                .param("prefetch", self.prefetch)
                .param("multi_ack_every", self.multi_ack_every);
        }
        if self.rate > 0.0 {
            report.param("rate_per_producer", self.rate);
        }
    }
}

/// Which routing key each publish carries.
#[derive(Debug, Clone)]
pub enum Keys {
    /// Producer i always uses keys[i % len] (throughput: one queue per key via the default
    /// exchange; fanout: the key is ignored).
    PerProducer(Vec<String>),
    /// Each publish picks a key at random from the pool (topic).
    Random(Arc<Vec<String>>),
}

pub struct Pump {
    pub exchange: String,
    pub keys: Keys,
    pub producers: usize,
    /// One consumer per entry, on that queue.
    pub consumer_queues: Vec<String>,
    pub flow: FlowArgs,
    pub seed: u64,
}

pub struct PumpResult {
    pub broker: BrokerInfo,
    pub window: Window,
    /// Publishes and deliveries inside the measured window.
    pub published: u64,
    pub delivered: u64,
    pub latencies: Latencies,
    pub confirms_acked: u64,
    pub confirms_nacked: u64,
    pub incidents: Arc<Incidents>,
    pub producer_errors: Vec<String>,
}

/// A running producer and its confirm window, if it uses confirms.
type ProducerTask = (JoinHandle<Result<()>>, Option<Arc<ConfirmWindow>>);

struct Shared {
    published: AtomicU64,
    delivered: AtomicU64,
    measuring: AtomicBool,
    stop: AtomicBool,
}

impl Pump {
    pub async fn run(self, common: &Common) -> Result<PumpResult> {
        let incidents = Arc::new(Incidents::default());
        let shared = Arc::new(Shared {
            published: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            measuring: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections: Vec<Connection> = Vec::new();
        let mut broker = BrokerInfo::default();

        // Consumers first, so that nothing published is dropped for want of a queue consumer.
        let mut consumers = Vec::new();
        for (j, queue) in self.consumer_queues.iter().enumerate() {
            let conn = connect(
                &common.uri,
                &format!("rmqd-perf consumer {j}"),
                0,
                &incidents,
            )
            .await?;
            broker = broker_info(&conn);
            let ch = open_channel(&conn, &incidents, None).await?;
            if self.flow.manual_ack && self.flow.prefetch > 0 {
                ch.basic_qos(BasicQosArguments::new(0, self.flow.prefetch, false))
                    .await
                    .context("basic.qos")?;
            }
            let mut args = BasicConsumeArguments::new(queue, &format!("rmqd-perf-{j}"));
            args.no_ack = !self.flow.manual_ack;
            let (_tag, rx) = ch
                .basic_consume_rx(args)
                .await
                .context(format_args!("basic.consume on {queue}"))?;
            let ack_every = if self.flow.manual_ack {
                Some(self.flow.multi_ack_every.max(1))
            } else {
                None
            };
            consumers.push(tokio::spawn(consume(
                ch,
                rx,
                ack_every,
                shared.clone(),
                stop_rx.clone(),
            )));
            connections.push(conn);
        }

        let mut producers: Vec<ProducerTask> = Vec::new();
        for i in 0..self.producers {
            let conn = connect(
                &common.uri,
                &format!("rmqd-perf producer {i}"),
                0,
                &incidents,
            )
            .await?;
            broker = broker_info(&conn);
            let confirms = (self.flow.confirm > 0).then(|| ConfirmWindow::new(self.flow.confirm));
            let ch = open_channel(&conn, &incidents, confirms.clone()).await?;
            let producer = Producer {
                ch,
                exchange: self.exchange.clone(),
                keys: self.keys.clone(),
                index: i,
                flow: self.flow.clone(),
                confirms: confirms.clone(),
                shared: shared.clone(),
                rng: Rng::new(self.seed.wrapping_add(i as u64 + 1)),
            };
            producers.push((tokio::spawn(producer.run()), confirms));
            connections.push(conn);
        }

        tokio::time::sleep(common.warmup).await;

        let p0 = shared.published.load(Ordering::Relaxed);
        let d0 = shared.delivered.load(Ordering::Relaxed);
        let start = common.probe.snapshot();
        shared.measuring.store(true, Ordering::Relaxed);
        let rss = RssWatch::start(&common.probe);
        tokio::time::sleep(common.duration).await;
        shared.measuring.store(false, Ordering::Relaxed);
        let end = common.probe.snapshot();
        let p1 = shared.published.load(Ordering::Relaxed);
        let d1 = shared.delivered.load(Ordering::Relaxed);
        let mut window = Window::between(&start, &end);
        rss.finish(&mut window).await;

        // Stop publishing; a producer stuck in a blocked connection is abandoned.
        shared.stop.store(true, Ordering::Relaxed);
        let mut producer_errors = Vec::new();
        let (mut acked, mut nacked) = (0, 0);
        for (i, (task, confirms)) in producers.into_iter().enumerate() {
            let abort = task.abort_handle();
            match tokio::time::timeout(Duration::from_secs(10), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(err))) => producer_errors.push(format!("producer {i}: {err}")),
                Ok(Err(err)) => producer_errors.push(format!("producer {i} panicked: {err}")),
                Err(_) => {
                    abort.abort();
                    producer_errors.push(format!("producer {i} did not stop within 10 s"));
                }
            }
            if let Some(c) = confirms {
                acked += c.acked();
                nacked += c.nacked();
            }
        }
        let _ = stop_tx.send(true);
        let mut latencies = Latencies::default();
        for task in consumers {
            if let Ok(Ok(lat)) = tokio::time::timeout(Duration::from_secs(10), task).await {
                latencies.merge(lat);
            }
        }
        close_all(connections).await;

        Ok(PumpResult {
            broker,
            window,
            published: p1 - p0,
            delivered: d1 - d0,
            latencies,
            confirms_acked: acked,
            confirms_nacked: nacked,
            incidents,
            producer_errors,
        })
    }
}

/// Closes connections concurrently, giving up on any that take more than 10 s.
pub async fn close_all(connections: Vec<Connection>) {
    let closes: Vec<_> = connections
        .into_iter()
        .map(|conn| {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(10), conn.close()).await;
            })
        })
        .collect();
    for close in closes {
        let _ = close.await;
    }
}

struct Producer {
    ch: Channel,
    exchange: String,
    keys: Keys,
    index: usize,
    flow: FlowArgs,
    confirms: Option<Arc<ConfirmWindow>>,
    shared: Arc<Shared>,
    rng: Rng,
}

impl Producer {
    async fn run(mut self) -> Result<()> {
        let mut props = BasicProperties::default();
        if self.flow.persistent {
            props.with_delivery_mode(amqprs::DELIVERY_MODE_PERSISTENT);
        }
        let props = props.finish();
        let started = Instant::now();
        let mut sent: u64 = 0;
        while !self.shared.stop.load(Ordering::Relaxed) {
            if let Some(confirms) = &self.confirms {
                // Wait for room in the window, but notice the stop flag meanwhile.
                tokio::select! {
                    tag = confirms.reserve() => { tag?; }
                    _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                }
            }
            if self.flow.rate > 0.0 {
                let due = started + Duration::from_secs_f64(sent as f64 / self.flow.rate);
                tokio::time::sleep_until(due).await;
            }
            let key = match &self.keys {
                Keys::PerProducer(keys) => keys[self.index % keys.len()].as_str(),
                Keys::Random(pool) => pool[self.rng.below(pool.len())].as_str(),
            };
            let args = BasicPublishArguments::new(&self.exchange, key);
            self.ch
                .basic_publish(props.clone(), stamped_body(self.flow.size), args)
                .await
                .context("basic.publish")?;
            sent += 1;
            self.shared.published.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(confirms) = &self.confirms {
            confirms.wait_all(Duration::from_secs(5)).await;
        }
        Ok(())
    }
}

/// Counts deliveries, records their latency while the window is open, and acknowledges them
/// (every `ack_every` with multiple=true) unless auto-ack.
async fn consume(
    ch: Channel,
    mut rx: mpsc::UnboundedReceiver<ConsumerMessage>,
    ack_every: Option<u64>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Latencies {
    let mut latencies = Latencies::default();
    let mut unacked = 0;
    loop {
        let msg = tokio::select! {
            biased;
            _ = stop.changed() => break,
            msg = rx.recv() => msg,
        };
        let Some(msg) = msg else { break };
        shared.delivered.fetch_add(1, Ordering::Relaxed);
        if shared.measuring.load(Ordering::Relaxed)
            && let Some(us) = msg.content.as_deref().and_then(age_us)
        {
            latencies.record_us(us);
        }
        if let Some(every) = ack_every {
            unacked += 1;
            if unacked >= every {
                if let Some(deliver) = &msg.deliver {
                    let _ = ch
                        .basic_ack(BasicAckArguments::new(deliver.delivery_tag(), true))
                        .await;
                }
                unacked = 0;
            }
        }
    }
    latencies
}

/// Adds a note when consumers fell behind: deliveries below `expected_per_publish` times the
/// publishes means the queues grew during the window, so latency includes time spent queued.
pub fn note_backlog(report: &mut Report, r: &PumpResult, expected_per_publish: f64) {
    let expected = r.published as f64 * expected_per_publish;
    if expected > 0.0 && (r.delivered as f64) < 0.9 * expected {
        report.note(format!(
            "consumers fell behind: {:.0} more messages were routed to queues than delivered \
             during the window ({:.0} msg/s), so the queues grew and latency includes time spent \
             queued",
            expected - r.delivered as f64,
            (expected - r.delivered as f64) / r.window.secs().max(1e-9)
        ));
    }
}

/// The numbers every pumping scenario reports. CPU time is divided by the messages published
/// in the window (fanout and topic add a per-delivery figure).
pub fn report_flow(report: &mut Report, r: &mut PumpResult) {
    report.broker(r.broker.clone());
    report
        .num("publish_rate", Some(r.window.rate(r.published)), "msg/s", 0)
        .num("deliver_rate", Some(r.window.rate(r.delivered)), "msg/s", 0)
        .count("published", r.published)
        .count("delivered", r.delivered);
    report.latency("latency", r.latencies.percentiles());
    report.window(&r.window, "msg", r.published);
    if r.confirms_nacked > 0 {
        report.count("confirms_nacked", r.confirms_nacked);
    }
    if r.incidents.blocked() > 0 {
        report.count("connection_blocked", r.incidents.blocked());
    }
    report.incidents(r.incidents.count(), r.incidents.first());
    for err in &r.producer_errors {
        report.note(err.clone());
    }
}
