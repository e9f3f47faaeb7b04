//! What a test suite pays for a broker of its own (issue 7's figures), through amqprs:
//!
//! - `binary start`: spawn `rmqd --port 0 --ephemeral`, read the URL it prints, connect, until
//!   connection.open-ok. Median of 20 spawns.
//! - `in-process start`: `rmqd::EmbeddedBroker::start()` and connect, until open-ok. Median of
//!   20 starts.
//! - `idle RSS`: VmRSS of an ephemeral rmqd half a second after it printed its URL, with no
//!   connections.
//! - `isolated vhost`: create and tear down a vhost with its permissions, in process
//!   (`isolated_vhost()` and its drop) and over the ctl socket as the pytest plugin does it
//!   (add_vhost, set_permissions, delete_vhost).
//!
//! `cargo bench -p rmqd-benches --bench test_broker` (builds the release rmqd first). Prints a
//! table and one JSON line.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amqprs::connection::{Connection, OpenConnectionArguments};
use rmqd::EmbeddedBroker;

const STARTS: usize = 20;
const VHOST_ROUNDS: usize = 500;

fn main() {
    let rmqd = build_rmqd();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let binary_start = median_ms((0..STARTS).map(|_| runtime.block_on(binary_start(&rmqd))));
    let in_process_start = median_ms((0..STARTS).map(|_| runtime.block_on(in_process_start())));
    let idle_rss_kib = idle_rss_kib(&rmqd);
    let vhost_in_process = runtime.block_on(async {
        let broker = EmbeddedBroker::start().await.expect("broker starts");
        median_ms((0..VHOST_ROUNDS).map(|_| {
            let started = Instant::now();
            drop(broker.isolated_vhost());
            started.elapsed()
        }))
    });
    let vhost_ctl = vhost_over_ctl(&rmqd);

    println!("test-suite broker (median; {STARTS} starts, {VHOST_ROUNDS} vhosts)");
    println!("  binary spawn -> open-ok        {binary_start:>8.2} ms   (target < 10 ms)");
    println!("  in-process start -> open-ok    {in_process_start:>8.2} ms   (target < 2 ms)");
    println!(
        "  idle ephemeral RSS             {:>8.2} MiB  (target < 10 MiB)",
        idle_rss_kib as f64 / 1024.0
    );
    println!("  isolated vhost, in process     {vhost_in_process:>8.3} ms   (target < 1 ms)");
    println!("  isolated vhost, ctl socket     {vhost_ctl:>8.3} ms   (target < 1 ms)");
    println!(
        "{{\"binary_start_ms\":{binary_start:.3},\"in_process_start_ms\":{in_process_start:.3},\
         \"idle_rss_kib\":{idle_rss_kib},\"vhost_in_process_ms\":{vhost_in_process:.4},\
         \"vhost_ctl_ms\":{vhost_ctl:.4}}}"
    );
}

/// The release binary, built now if needed (`RMQD_BIN` overrides).
fn build_rmqd() -> PathBuf {
    if let Some(bin) = std::env::var_os("RMQD_BIN") {
        return PathBuf::from(bin);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "rmqd",
            "--bin",
            "rmqd",
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building rmqd failed");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("release/rmqd")
}

fn spawn(rmqd: &Path, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(rmqd)
        .args([
            "--port",
            "0",
            "--ephemeral",
            "--bind",
            "127.0.0.1",
            "--log-level",
            "warn",
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("rmqd starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("piped"))
        .read_line(&mut line)
        .expect("the ready line");
    (child, line.trim_end().to_string())
}

fn stop(mut child: Child) {
    drop(child.stdin.take());
    let _ = child.wait();
}

async fn open(url: &str) -> Connection {
    let args = OpenConnectionArguments::try_from(url).expect("a URL amqprs parses");
    Connection::open(&args).await.expect("open-ok")
}

async fn binary_start(rmqd: &Path) -> Duration {
    let started = Instant::now();
    let (child, url) = spawn(rmqd, &[]);
    let conn = open(&url).await;
    let elapsed = started.elapsed();
    let _ = conn.close().await;
    stop(child);
    elapsed
}

async fn in_process_start() -> Duration {
    let started = Instant::now();
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let conn = open(&broker.amqp_url()).await;
    let elapsed = started.elapsed();
    let _ = conn.close().await;
    elapsed
}

fn idle_rss_kib(rmqd: &Path) -> u64 {
    let (child, _) = spawn(rmqd, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in /proc");
    stop(child);
    rss
}

fn vhost_over_ctl(rmqd: &Path) -> f64 {
    let dir = std::env::temp_dir().join(format!("rmqd-bench-{}", std::process::id()));
    let socket = dir.join("ctl.sock");
    let (child, _) = spawn(rmqd, &["--ctl-socket", socket.to_str().expect("utf-8")]);
    let stream = UnixStream::connect(&socket).expect("ctl socket");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut call = |request: String| {
        writer.write_all(request.as_bytes()).expect("send");
        let mut response = String::new();
        reader.read_line(&mut response).expect("response");
        assert!(response.starts_with("{\"ok\":true"), "{response}");
    };
    let median = median_ms((0..VHOST_ROUNDS).map(|n| {
        let started = Instant::now();
        call(format!("{{\"command\":\"add_vhost\",\"args\":[\"t{n}\"]}}\n"));
        call(format!(
            "{{\"command\":\"set_permissions\",\"vhost\":\"t{n}\",\"args\":[\"guest\",\".*\",\".*\",\".*\"]}}\n"
        ));
        call(format!("{{\"command\":\"delete_vhost\",\"args\":[\"t{n}\"]}}\n"));
        started.elapsed()
    }));
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);
    median
}

fn median_ms(samples: impl Iterator<Item = Duration>) -> f64 {
    let mut ms: Vec<f64> = samples.map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}
