//! `backlog`: M messages of S bytes into one queue that nobody consumes (with publisher
//! confirms, so that the end of the fill is known), then one consumer drains it. Reports the
//! fill rate, the broker's RSS per queued message (RSS full minus RSS before, over M), the drain
//! rate, and the broker's CPU time per message in each phase. `--duration` is not used: each
//! phase runs to completion, or to `--timeout`.

use std::sync::Arc;
use std::time::Duration;

use amqprs::BasicProperties;
use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicPublishArguments, BasicQosArguments,
};
use tokio::time::Instant;

use super::pump::close_all;
use super::{Common, broker_info};
use crate::client::{
    ConfirmWindow, Incidents, cleanup, connect, declare_queue, open_channel, queue_depth,
    unique_name,
};
use crate::measure::{RssWatch, Window, stamped_body};
use crate::report::Report;
use crate::{Context, Result};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Messages to queue.
    #[arg(long, short = 'm', default_value_t = 1_000_000)]
    pub messages: u64,

    /// Body size in bytes (at least 8).
    #[arg(long, short = 's', default_value_t = 128)]
    pub size: usize,

    /// Producers, each on its own connection, sharing the messages.
    #[arg(long, short = 'x', default_value_t = 1)]
    pub producers: usize,

    /// Unconfirmed publishes allowed per producer (publisher confirms are always on here).
    #[arg(long, default_value_t = 1000)]
    pub confirm: usize,

    /// Persistent messages into a durable queue.
    #[arg(long)]
    pub persistent: bool,

    /// Drain with basic.ack and this prefetch instead of auto-ack (0: auto-ack).
    #[arg(long, default_value_t = 0)]
    pub drain_prefetch: u16,

    /// Seconds each phase (fill, drain) may take before giving up.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
}

pub async fn run(common: &Common, args: &Args) -> Result<Report> {
    let queue = unique_name("backlog.q");
    let result = fill_and_drain(common, args, &queue).await;
    cleanup(&common.uri, std::slice::from_ref(&queue), &[]).await;
    result
}

async fn fill_and_drain(common: &Common, args: &Args, queue: &str) -> Result<Report> {
    let probe = common.probe;
    let timeout = Duration::from_secs_f64(args.timeout.max(1.0));
    let incidents = Arc::new(Incidents::default());
    let setup = connect(&common.uri, "rmqd-perf setup", 0, &incidents).await?;
    let broker = broker_info(&setup);
    let setup_ch = open_channel(&setup, &incidents, None).await?;
    declare_queue(&setup_ch, queue, args.persistent).await?;

    // Fill.
    let producers = args.producers.max(1);
    let mut connections = Vec::new();
    let mut channels = Vec::new();
    for i in 0..producers {
        let conn = connect(
            &common.uri,
            &format!("rmqd-perf producer {i}"),
            0,
            &incidents,
        )
        .await?;
        let confirms = ConfirmWindow::new(args.confirm.max(1));
        let ch = open_channel(&conn, &incidents, Some(confirms.clone())).await?;
        channels.push((ch, confirms));
        connections.push(conn);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = probe.snapshot();
    let rss = RssWatch::start(&probe);
    let mut tasks = Vec::new();
    for (i, (ch, confirms)) in channels.into_iter().enumerate() {
        let share = args.messages / producers as u64
            + u64::from((i as u64) < args.messages % producers as u64);
        let (size, persistent) = (args.size, args.persistent);
        let queue = queue.to_string();
        tasks.push(tokio::spawn(async move {
            let mut props = BasicProperties::default();
            if persistent {
                props.with_delivery_mode(amqprs::DELIVERY_MODE_PERSISTENT);
            }
            let props = props.finish();
            for _ in 0..share {
                confirms.reserve().await?;
                ch.basic_publish(
                    props.clone(),
                    stamped_body(size),
                    BasicPublishArguments::new("", &queue),
                )
                .await
                .context("basic.publish")?;
            }
            if !confirms.wait_all(timeout).await {
                return Err(format!(
                    "{} publishes still unconfirmed after {timeout:?}",
                    confirms.unconfirmed()
                ));
            }
            Ok::<u64, String>(confirms.nacked())
        }));
    }
    let mut nacked = 0;
    for task in tasks {
        nacked += tokio::time::timeout(timeout, task)
            .await
            .map_err(|_| format!("filling the queue took more than {timeout:?}"))?
            .context("producer task")??;
    }
    let filled = probe.snapshot();
    let mut fill = Window::between(&before, &filled);
    rss.finish(&mut fill).await;
    close_all(connections).await;
    // Let the broker settle (RabbitMQ may move messages around, rmqd nothing), then weigh it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let full = probe.snapshot();
    let depth = queue_depth(&setup_ch, queue).await?;

    // Drain.
    let conn = connect(&common.uri, "rmqd-perf consumer", 0, &incidents).await?;
    let ch = open_channel(&conn, &incidents, None).await?;
    let manual = args.drain_prefetch > 0;
    if manual {
        ch.basic_qos(BasicQosArguments::new(0, args.drain_prefetch, false))
            .await
            .context("basic.qos")?;
    }
    let drain_start = probe.snapshot();
    let mut consume = BasicConsumeArguments::new(queue, "rmqd-perf-drain");
    consume.no_ack = !manual;
    let (_, mut rx) = ch
        .basic_consume_rx(consume)
        .await
        .context("basic.consume")?;
    let target = u64::from(depth);
    let deadline = Instant::now() + timeout;
    let mut count = 0u64;
    let ack_every = u64::from(args.drain_prefetch / 2).max(1);
    while count < target {
        let msg = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(msg)) => msg,
            Ok(None) => return Err("the drain consumer was closed".into()),
            Err(_) => break,
        };
        count += 1;
        if manual
            && (count.is_multiple_of(ack_every) || count == target)
            && let Some(deliver) = &msg.deliver
        {
            ch.basic_ack(BasicAckArguments::new(deliver.delivery_tag(), true))
                .await
                .context("basic.ack")?;
        }
    }
    let drain_end = probe.snapshot();
    let drain = Window::between(&drain_start, &drain_end);
    close_all(vec![conn]).await;
    let _ = setup_ch.close().await;
    close_all(vec![setup]).await;

    let mut report = common.report("backlog");
    report.broker(broker);
    report
        .param("messages", args.messages)
        .param("size", args.size.max(crate::measure::STAMP_LEN))
        .param("producers", producers)
        .param("confirm_window", args.confirm)
        .param("persistent", args.persistent)
        .param(
            "drain_ack",
            if manual {
                format!("manual, prefetch {}", args.drain_prefetch)
            } else {
                "auto".to_string()
            },
        );
    let m = args.messages;
    report
        .count("queued", u64::from(depth))
        .num("fill_rate", Some(fill.rate(m)), "msg/s", 0)
        .num("fill_s", Some(fill.secs()), "s", 2)
        .num(
            "broker_cpu_us_per_msg_fill",
            fill.broker_cpu_us_per(m),
            "µs",
            2,
        )
        .num(
            "client_cpu_us_per_msg_fill",
            fill.client_cpu_us_per(m),
            "µs",
            2,
        )
        .bytes(
            "broker_rss_before_bytes",
            before.broker.map(|s| s.rss_bytes as f64),
        )
        .bytes(
            "broker_rss_full_bytes",
            full.broker.map(|s| s.rss_bytes as f64),
        )
        .bytes(
            "broker_rss_peak_bytes",
            fill.broker_rss_peak.map(|b| b as f64),
        )
        .bytes(
            "broker_rss_per_msg_bytes",
            match (before.broker, full.broker) {
                (Some(a), Some(b)) if depth > 0 => {
                    Some((b.rss_bytes as f64 - a.rss_bytes as f64) / f64::from(depth))
                }
                _ => None,
            },
        )
        .count("drained", count)
        .num("drain_rate", Some(drain.rate(count)), "msg/s", 0)
        .num("drain_s", Some(drain.secs()), "s", 2)
        .num(
            "broker_cpu_us_per_msg_drain",
            drain.broker_cpu_us_per(count),
            "µs",
            2,
        )
        .num(
            "client_cpu_us_per_msg_drain",
            drain.client_cpu_us_per(count),
            "µs",
            2,
        )
        .bytes(
            "broker_rss_drained_bytes",
            drain_end.broker.map(|s| s.rss_bytes as f64),
        );
    if nacked > 0 {
        report.count("confirms_nacked", nacked);
    }
    if u64::from(depth) != m {
        report.note(format!(
            "the queue held {depth} messages after the fill, not {m}"
        ));
    }
    if count < target {
        report.note(format!(
            "drained only {count} of {target} within {timeout:?}"
        ));
    }
    if incidents.blocked() > 0 {
        report.count("connection_blocked", incidents.blocked());
    }
    report.incidents(incidents.count(), incidents.first());
    Ok(report)
}
