//! `connections`: opens N connections, each with one channel and heartbeats, holds them idle for
//! the measured window, then closes them. Reports the open rate, the broker's RSS per
//! connection (RSS with all open minus RSS before), its CPU time per connection opened, its idle
//! CPU use while holding them (heartbeats), and how many were still open at the end.

use std::sync::Arc;
use std::time::Duration;

use amqprs::channel::Channel;
use amqprs::connection::Connection;
use tokio::sync::Semaphore;

use super::pump::close_all;
use super::{Common, broker_info};
use crate::Result;
use crate::client::{Incidents, connect, open_channel};
use crate::measure::{Window, raise_fd_limit};
use crate::report::Report;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Connections to hold.
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub connections: usize,

    /// Heartbeat interval in seconds asked for by each connection (the broker may lower it).
    #[arg(long, default_value_t = 10)]
    pub heartbeat: u16,

    /// Connections being opened at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
}

pub async fn run(common: &Common, args: &Args) -> Result<Report> {
    let limit = raise_fd_limit();
    if (args.connections as u64) + 64 > limit {
        return Err(format!(
            "{} connections need about {} file descriptors, but this process may open {limit} \
             (raise `ulimit -n`)",
            args.connections,
            args.connections + 64
        ));
    }
    let incidents = Arc::new(Incidents::default());
    let probe = common.probe;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = probe.snapshot();

    // Open them, `concurrency` at a time.
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let (gate, uri, incidents) = (gate.clone(), common.uri.clone(), incidents.clone());
        let heartbeat = args.heartbeat;
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let conn = connect(&uri, &format!("rmqd-perf idle {i}"), heartbeat, &incidents).await?;
            let ch = open_channel(&conn, &incidents, None).await?;
            Ok::<(Connection, Channel), String>((conn, ch))
        }));
    }
    let mut held: Vec<(Connection, Channel)> = Vec::with_capacity(args.connections);
    let mut failures = 0u64;
    let mut first_failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok(pair)) => held.push(pair),
            Ok(Err(err)) => {
                failures += 1;
                first_failure.get_or_insert(err);
            }
            Err(err) => {
                failures += 1;
                first_failure.get_or_insert(format!("open task panicked: {err}"));
            }
        }
    }
    let opened_at = probe.snapshot();
    let opening = Window::between(&before, &opened_at);
    let opened = held.len() as u64;
    let broker = held
        .first()
        .map(|(conn, _)| broker_info(conn))
        .unwrap_or_default();

    // Hold them: only heartbeats flow.
    tokio::time::sleep(common.warmup).await;
    let hold_start = probe.snapshot();
    tokio::time::sleep(common.duration).await;
    let hold_end = probe.snapshot();
    let holding = Window::between(&hold_start, &hold_end);
    let alive = held
        .iter()
        .filter(|(conn, ch)| conn.is_open() && ch.is_open())
        .count() as u64;

    let closing_start = probe.snapshot();
    close_all(held.into_iter().map(|(conn, _)| conn).collect()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = probe.snapshot();
    let closing = Window::between(&closing_start, &after);

    let mut report = common.report("connections");
    report.broker(broker);
    report
        .param("connections", args.connections)
        .param("heartbeat", args.heartbeat)
        .param("concurrency", args.concurrency);
    report
        .count("opened", opened)
        .count("open_failures", failures)
        .count("alive_at_end", alive)
        .num("open_rate", Some(opening.rate(opened)), "conn/s", 0)
        .num(
            "broker_cpu_us_per_connection_open",
            opening.broker_cpu_us_per(opened),
            "µs",
            1,
        )
        .bytes(
            "broker_rss_before_bytes",
            before.broker.map(|s| s.rss_bytes as f64),
        )
        .bytes(
            "broker_rss_open_bytes",
            hold_end.broker.map(|s| s.rss_bytes as f64),
        )
        .bytes(
            "broker_rss_per_connection_bytes",
            match (before.broker, hold_end.broker) {
                (Some(a), Some(b)) if opened > 0 => {
                    Some((b.rss_bytes as f64 - a.rss_bytes as f64) / opened as f64)
                }
                _ => None,
            },
        )
        .bytes(
            "broker_rss_after_close_bytes",
            after.broker.map(|s| s.rss_bytes as f64),
        )
        .num("hold_s", Some(holding.secs()), "s", 2)
        .num("broker_idle_cpu_cores", holding.broker_cores(), "cores", 4)
        .num(
            "broker_idle_cpu_us_per_connection_s",
            holding
                .broker_cpu
                .filter(|_| opened > 0)
                .map(|c| c.as_secs_f64() * 1e6 / opened as f64 / holding.secs()),
            "µs",
            3,
        )
        .num("close_s", Some(closing.secs()), "s", 2);
    let mut count = incidents.count();
    let mut first = incidents.first();
    if let Some(err) = first_failure {
        count += failures;
        first.get_or_insert(format!("opening: {err}"));
    }
    report.incidents(count, first);
    Ok(report)
}
