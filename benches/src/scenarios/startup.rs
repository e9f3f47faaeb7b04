//! `startup`: spawns a broker `--runs` times, each on a fresh free port, and measures the time
//! from spawn to the first `connection.open-ok` (polling with amqprs), plus the broker's CPU time
//! and RSS at that moment. The command is a `sh -c` template: `{port}` is replaced by the AMQP
//! port and `{port2}` by a second free port (RabbitMQ's distribution port). Start it with `exec`
//! so that the spawned process is the broker itself and its /proc entries can be read.
//!
//! Each broker is stopped with SIGTERM to its process group (SIGKILL after 30 s).

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Common;
use crate::client::{Incidents, connect};
use crate::measure::{Latencies, sample_process};
use crate::report::{BrokerInfo, Report};
use crate::{Context, Result};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The broker's command line, run by `sh -c`, with {port} (and optionally {port2}), e.g.
    /// "exec target/release/rmqd --port {port} --bind 127.0.0.1 --log-level warn".
    #[arg(long)]
    pub cmd: String,

    /// Spawns to measure; the median is the headline number.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,

    /// Seconds to wait for one broker to accept a connection.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,

    /// Milliseconds between connection attempts.
    #[arg(long, default_value_t = 2)]
    pub poll_ms: u64,

    /// Let the broker's own output through (default: discarded).
    #[arg(long)]
    pub show_output: bool,
}

struct Run {
    to_open_ok: Duration,
    cpu: Option<Duration>,
    rss: Option<u64>,
}

pub async fn run(common: &Common, args: &Args) -> Result<Report> {
    if !args.cmd.contains("{port}") {
        return Err("--cmd must contain {port}, where the broker's AMQP port goes".into());
    }
    let mut runs = Vec::new();
    let mut broker = BrokerInfo::default();
    for i in 0..args.runs.max(1) {
        let (run, info) = spawn_once(common, args)
            .await
            .map_err(|e| format!("run {}: {e}", i + 1))?;
        broker = info;
        runs.push(run);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut times = Latencies::default();
    for r in &runs {
        times.record(r.to_open_ok);
    }
    let p = times.percentiles().ok_or("no runs")?;
    let min = runs.iter().map(|r| r.to_open_ok).min().unwrap_or_default();
    let median_of = |mut v: Vec<f64>| -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    };
    let cpu = median_of(
        runs.iter()
            .filter_map(|r| r.cpu.map(|c| c.as_secs_f64() * 1e3))
            .collect(),
    );
    let rss = median_of(
        runs.iter()
            .filter_map(|r| r.rss.map(|b| b as f64))
            .collect(),
    );

    let mut report = common.report("startup");
    report.broker(broker);
    report
        .param("cmd", args.cmd.clone())
        .param("runs", runs.len());
    report
        .num("startup_median_ms", Some(p.p50 / 1e3), "ms", 2)
        .num("startup_min_ms", Some(min.as_secs_f64() * 1e3), "ms", 2)
        .num("startup_p90_ms", Some(p.p90 / 1e3), "ms", 2)
        .num("startup_max_ms", Some(p.max / 1e3), "ms", 2)
        .num("broker_cpu_ms_to_open_ok", cpu, "ms", 1)
        .bytes("broker_rss_at_open_ok_bytes", rss);
    if cpu.is_none() {
        report.note("the spawned process is not the broker (start --cmd with exec?): no CPU/RSS");
    }
    Ok(report)
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr().context("finding a free port")?.port())
}

async fn spawn_once(common: &Common, args: &Args) -> Result<(Run, BrokerInfo)> {
    let port = free_port()?;
    let mut port2 = free_port()?;
    while port2 == port {
        port2 = free_port()?;
    }
    let cmd = args
        .cmd
        .replace("{port}", &port.to_string())
        .replace("{port2}", &port2.to_string());
    let uri = common.uri.with_port(port);
    let mut command = Command::new("sh");
    command.arg("-c").arg(&cmd).process_group(0);
    if !args.show_output {
        command.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let started = Instant::now();
    let mut child = command.spawn().context(format_args!("spawning `{cmd}`"))?;
    let result = wait_for_open_ok(&mut child, &uri, args, started).await;
    let pid = child.id();
    let sample = sample_process(pid).ok();
    stop(&mut child).await;
    let (to_open_ok, broker) = result.map_err(|e| format!("`{cmd}`: {e}"))?;
    Ok((
        Run {
            to_open_ok,
            cpu: sample.map(|s| s.cpu),
            rss: sample.map(|s| s.rss_bytes),
        },
        broker,
    ))
}

async fn wait_for_open_ok(
    child: &mut Child,
    uri: &crate::client::BrokerUri,
    args: &Args,
    started: Instant,
) -> Result<(Duration, BrokerInfo)> {
    let timeout = Duration::from_secs_f64(args.timeout.max(0.1));
    let incidents = Arc::new(Incidents::default());
    loop {
        if let Some(status) = child.try_wait().context("waiting for the broker")? {
            return Err(format!(
                "exited with {status} before accepting a connection"
            ));
        }
        let attempt = tokio::time::timeout(
            Duration::from_secs(5),
            connect(uri, "rmqd-perf startup", 0, &incidents),
        )
        .await;
        if let Ok(Ok(conn)) = attempt {
            let elapsed = started.elapsed();
            let info = super::broker_info(&conn);
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.close()).await;
            return Ok((elapsed, info));
        }
        if started.elapsed() > timeout {
            return Err(format!("no connection.open-ok within {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(args.poll_ms)).await;
    }
}

/// SIGTERM to the child's process group, then SIGKILL if it is still there after 30 s.
async fn stop(child: &mut Child) {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: kill only sends a signal, to the process group we created for this child.
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.wait();
}
