//! Measuring: a process's CPU time and RSS from `/proc`, measurement windows, latency
//! percentiles, and the timestamp every message body starts with.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::Result;

/// A process's CPU time (user + system, all threads) and resident set size at one instant.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// User + system time.
    pub cpu: Duration,
    /// System time alone (in the kernel: syscalls, TCP, scheduling).
    pub sys: Duration,
    pub rss_bytes: u64,
}

/// Clock ticks per second, the unit of utime and stime in `/proc/PID/stat`.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// Reads utime + stime from `/proc/PID/stat` and VmRSS from `/proc/PID/status`.
pub fn sample_process(pid: u32) -> Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    // The command name (field 2) is in parentheses and may contain spaces: count fields from
    // the last ')'. After it come field 3 (state) onwards; utime and stime are fields 14, 15.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| format!("unexpected /proc/{pid}/stat: {stat:?}"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("no field {n} in /proc/{pid}/stat"))
    };
    let (utime, stime) = (field(14)?, field(15)?);
    let micros = |ticks: u64| Duration::from_micros(ticks * 1_000_000 / clock_ticks());

    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))?;
    Ok(ProcSample {
        cpu: micros(utime + stime),
        sys: micros(stime),
        rss_bytes: rss_kib * 1024,
    })
}

/// The broker process given with `--broker-pid`, if any, and this process (the load generator,
/// so that a reader can tell whether the client was the bottleneck).
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub broker_pid: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub at: Instant,
    pub broker: Option<ProcSample>,
    pub client: Option<ProcSample>,
}

impl Probe {
    /// Checks that the broker's `/proc` entries are readable before any work is done.
    pub fn new(broker_pid: Option<u32>) -> Result<Self> {
        if let Some(pid) = broker_pid {
            sample_process(pid).map_err(|e| format!("--broker-pid {pid}: {e}"))?;
        }
        Ok(Probe { broker_pid })
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            broker: self.broker_pid.and_then(|pid| sample_process(pid).ok()),
            client: sample_process(std::process::id()).ok(),
        }
    }

    pub fn broker_rss(&self) -> Option<u64> {
        self.broker_pid
            .and_then(|pid| sample_process(pid).ok())
            .map(|s| s.rss_bytes)
    }
}

/// What happened between two snapshots.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub elapsed: Duration,
    pub broker_cpu: Option<Duration>,
    /// The part of `broker_cpu` spent in the kernel.
    pub broker_sys: Option<Duration>,
    pub client_cpu: Option<Duration>,
    pub broker_rss_start: Option<u64>,
    pub broker_rss_end: Option<u64>,
    /// The largest RSS seen by a [`RssWatch`] during the window, if one ran.
    pub broker_rss_peak: Option<u64>,
}

impl Window {
    pub fn between(start: &Snapshot, end: &Snapshot) -> Self {
        let cpu = |a: Option<ProcSample>, b: Option<ProcSample>| match (a, b) {
            (Some(a), Some(b)) => Some(b.cpu.saturating_sub(a.cpu)),
            _ => None,
        };
        Window {
            elapsed: end.at.duration_since(start.at),
            broker_cpu: cpu(start.broker, end.broker),
            broker_sys: match (start.broker, end.broker) {
                (Some(a), Some(b)) => Some(b.sys.saturating_sub(a.sys)),
                _ => None,
            },
            client_cpu: cpu(start.client, end.client),
            broker_rss_start: start.broker.map(|s| s.rss_bytes),
            broker_rss_end: end.broker.map(|s| s.rss_bytes),
            broker_rss_peak: None,
        }
    }

    pub fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64()
    }

    /// `count` per second over the window.
    pub fn rate(&self, count: u64) -> f64 {
        if self.elapsed.is_zero() {
            0.0
        } else {
            count as f64 / self.secs()
        }
    }

    /// The broker's CPU time per unit of work, in µs (None without `--broker-pid` or work).
    pub fn broker_cpu_us_per(&self, count: u64) -> Option<f64> {
        per(self.broker_cpu, count)
    }

    pub fn client_cpu_us_per(&self, count: u64) -> Option<f64> {
        per(self.client_cpu, count)
    }

    /// The broker's CPU use over the window as a fraction of one core (1.0 = one core busy).
    pub fn broker_cores(&self) -> Option<f64> {
        self.broker_cpu
            .filter(|_| !self.elapsed.is_zero())
            .map(|c| c.as_secs_f64() / self.secs())
    }

    /// The share of the broker's CPU time spent in the kernel (0 to 1).
    pub fn broker_sys_share(&self) -> Option<f64> {
        match (self.broker_cpu, self.broker_sys) {
            (Some(cpu), Some(sys)) if !cpu.is_zero() => Some(sys.as_secs_f64() / cpu.as_secs_f64()),
            _ => None,
        }
    }

    pub fn client_cores(&self) -> Option<f64> {
        self.client_cpu
            .filter(|_| !self.elapsed.is_zero())
            .map(|c| c.as_secs_f64() / self.secs())
    }
}

fn per(cpu: Option<Duration>, count: u64) -> Option<f64> {
    match cpu {
        Some(cpu) if count > 0 => Some(cpu.as_secs_f64() * 1e6 / count as f64),
        _ => None,
    }
}

/// Samples the broker's RSS every 100 ms in the background and keeps the largest value.
pub struct RssWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RssWatch {
    pub fn start(probe: &Probe) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = probe.broker_pid.map(|pid| {
            let (peak, stop) = (peak.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(s) = sample_process(pid) {
                        peak.fetch_max(s.rss_bytes, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        });
        RssWatch { peak, stop, task }
    }

    /// Stops sampling; the peak is also taken over `window`'s end sample.
    pub async fn finish(mut self, window: &mut Window) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(task) = self.task.take() {
            let _ = task.await;
            let peak = self
                .peak
                .load(Ordering::Relaxed)
                .max(window.broker_rss_end.unwrap_or(0));
            window.broker_rss_peak = Some(peak);
        }
    }
}

/// Nanoseconds since the Unix epoch: the timestamp in every message body, comparable between
/// processes on one machine.
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Bytes at the start of every body: the publish time, big-endian nanoseconds.
pub const STAMP_LEN: usize = 8;

/// A body of `size` bytes (at least [`STAMP_LEN`]) stamped with the current time.
pub fn stamped_body(size: usize) -> Vec<u8> {
    let mut body = vec![0u8; size.max(STAMP_LEN)];
    body[..STAMP_LEN].copy_from_slice(&now_nanos().to_be_bytes());
    body
}

/// Microseconds since the body was stamped, if it carries a stamp.
pub fn age_us(body: &[u8]) -> Option<u64> {
    let stamp = u64::from_be_bytes(body.get(..STAMP_LEN)?.try_into().ok()?);
    Some(now_nanos().saturating_sub(stamp) / 1000)
}

/// Latencies in µs. Every sample is kept (4 bytes each), so percentiles are exact.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<u32>,
}

/// Percentiles of a [`Latencies`], in µs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latencies {
    pub fn record_us(&mut self, us: u64) {
        self.samples.push(us.min(u32::MAX as u64) as u32);
    }

    pub fn record(&mut self, d: Duration) {
        self.record_us(d.as_micros() as u64);
    }

    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn percentiles(&mut self) -> Option<Percentiles> {
        if self.samples.is_empty() {
            return None;
        }
        self.samples.sort_unstable();
        let n = self.samples.len();
        let at = |q: f64| -> f64 {
            let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            self.samples[i] as f64
        };
        let sum: u64 = self.samples.iter().map(|&s| s as u64).sum();
        Some(Percentiles {
            count: n,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: self.samples[n - 1] as f64,
            mean: sum as f64 / n as f64,
        })
    }
}

/// A small, fast, seeded PRNG (xorshift64*), so that topic bindings and keys are reproducible
/// from `--seed` without another dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Raises this process's open-file limit to the hard limit (the connections scenario holds
/// thousands of sockets). Returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// Formats a byte count for people: 1.5 MiB.
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
