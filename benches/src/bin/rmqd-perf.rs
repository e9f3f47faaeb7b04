//! `rmqd-perf`: a load generator for AMQP 0-9-1 brokers, in the manner of RabbitMQ's PerfTest or
//! lavinmqperf, to measure rmqd and RabbitMQ side by side through the same third-party client
//! (amqprs). Each scenario prints a human summary, then one JSON line.
//!
//! ```sh
//! rmqd-perf --uri amqp://guest:guest@127.0.0.1:5672/%2f --duration 10 --broker-pid PID \
//!     throughput --producers 1 --consumers 1 --size 16 --confirm 100
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rmqd_benches::Result;
use rmqd_benches::report::Report;
use rmqd_benches::scenarios::{
    Common, CommonArgs, backlog, connections, fanout, rpc, startup, throughput, topic,
};

#[derive(Debug, Parser)]
#[command(
    name = "rmqd-perf",
    version,
    about = "AMQP 0-9-1 load generator: rmqd and RabbitMQ side by side through amqprs",
    after_help = "Every scenario prints a summary, then one JSON line with the same numbers \
                  (the last line of stdout). With --broker-pid, the broker's CPU time and RSS \
                  are sampled from /proc."
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// P producers → Q queues → C consumers: rates, end-to-end latency, CPU per message.
    Throughput(throughput::Args),
    /// One fanout exchange, N queues with one consumer each.
    Fanout(fanout::Args),
    /// K random `*`/`#` bindings on a topic exchange: bind rate, then random routing keys.
    Topic(topic::Args),
    /// Requests through a topic exchange, replies to exclusive reply queues.
    Rpc(rpc::Args),
    /// Hold N idle connections, each with a channel and heartbeats: RSS per connection.
    Connections(connections::Args),
    /// M messages into a queue with no consumer: RSS per message, then the drain rate.
    Backlog(backlog::Args),
    /// Spawn a broker repeatedly: time from spawn to the first connection.open-ok.
    Startup(startup::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("rmqd-perf: cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(report) => {
            report.print();
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("rmqd-perf: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<Report> {
    let common = Common::from_args(&cli.common)?;
    match &cli.scenario {
        Scenario::Throughput(args) => throughput::run(&common, args).await,
        Scenario::Fanout(args) => fanout::run(&common, args).await,
        Scenario::Topic(args) => topic::run(&common, args).await,
        Scenario::Rpc(args) => rpc::run(&common, args).await,
        Scenario::Connections(args) => connections::run(&common, args).await,
        Scenario::Backlog(args) => backlog::run(&common, args).await,
        Scenario::Startup(args) => startup::run(&common, args).await,
    }
}
