//! The scenarios, one module each, and what they share: the common command-line flags.
//!
//! | scenario      | measures                                                              |
//! |---------------|-----------------------------------------------------------------------|
//! | `throughput`  | P producers → Q queues → C consumers: rates, end-to-end latency       |
//! | `fanout`      | one fanout exchange, N queues, one consumer each                      |
//! | `topic`       | K random `*`/`#` bindings: bind rate, then publish/deliver rates      |
//! | `rpc`         | request via a topic exchange, reply to an exclusive queue: round trips|
//! | `connections` | N idle connections with a channel and heartbeats: RSS per connection  |
//! | `backlog`     | M messages into a queue nobody consumes: RSS per message, drain rate  |
//! | `startup`     | spawn a broker, poll until `connection.open-ok`                       |
//!
//! Every scenario samples the broker's CPU time and RSS (`--broker-pid`) at the start and end of
//! its measured window, and prints a human summary and one JSON line.

use std::time::Duration;

use amqprs::connection::Connection;

use crate::Result;
use crate::client::BrokerUri;
use crate::measure::Probe;
use crate::report::{BrokerInfo, Report};

pub mod backlog;
pub mod connections;
pub mod fanout;
pub mod pump;
pub mod rpc;
pub mod startup;
pub mod throughput;
pub mod topic;

/// Flags every scenario takes (before or after the scenario name).
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// The broker: amqp://user:pass@host:port/vhost (vhost percent-encoded, %2f is /).
    #[arg(
        long,
        global = true,
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        env = "RMQD_PERF_URI"
    )]
    pub uri: String,

    /// Length of the measured window, in seconds.
    #[arg(long, global = true, default_value_t = 10.0)]
    pub duration: f64,

    /// Seconds of load before the measured window starts (connections warm, queues settled).
    #[arg(long, global = true, default_value_t = 1.0)]
    pub warmup: f64,

    /// The broker's process id: its CPU time (utime+stime from /proc/PID/stat) and RSS (VmRSS
    /// from /proc/PID/status) are sampled at the start and end of the measured window.
    #[arg(long, global = true)]
    pub broker_pid: Option<u32>,

    /// A name for the broker under test, copied into the report (e.g. "rmqd", "rabbitmq").
    #[arg(long, global = true)]
    pub label: Option<String>,
}

/// [`CommonArgs`], checked.
#[derive(Debug, Clone)]
pub struct Common {
    pub uri: BrokerUri,
    pub duration: Duration,
    pub warmup: Duration,
    pub probe: Probe,
    pub label: Option<String>,
}

impl Common {
    pub fn from_args(args: &CommonArgs) -> Result<Self> {
        let secs = |what: &str, v: f64| -> Result<Duration> {
            Duration::try_from_secs_f64(v).map_err(|_| format!("--{what} {v}: not a duration"))
        };
        Ok(Common {
            uri: BrokerUri::parse(&args.uri)?,
            duration: secs("duration", args.duration)?,
            warmup: secs("warmup", args.warmup)?,
            probe: Probe::new(args.broker_pid)?,
            label: args.label.clone(),
        })
    }

    pub fn report(&self, scenario: &str) -> Report {
        Report::new(scenario, self.label.clone(), self.probe.broker_pid)
    }
}

/// How the broker introduced itself (server properties of `connection.start`).
pub fn broker_info(conn: &Connection) -> BrokerInfo {
    let props = conn.server_properties();
    BrokerInfo {
        product: props.product().to_string(),
        version: props.version().to_string(),
    }
}
