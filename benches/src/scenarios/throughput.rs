//! `throughput`: P producers publish through the default exchange to Q queues, C consumers
//! consume them (producer i → queue i mod Q, consumer j ← queue j mod Q). Reports publish and
//! delivery rates, end-to-end latency (from the timestamp in the body) and the broker's CPU
//! time per message published.

use super::Common;
use super::pump::{FlowArgs, Keys, Pump, note_backlog, report_flow};
use crate::Result;
use crate::client::{BrokerUri, Incidents, cleanup, connect, declare_queue, open_channel};
use crate::report::Report;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Producers, each on its own connection.
    #[arg(long, short = 'x', default_value_t = 1)]
    pub producers: usize,

    /// Consumers, each on its own connection.
    #[arg(long, short = 'y', default_value_t = 1)]
    pub consumers: usize,

    /// Queues.
    #[arg(long, short = 'q', default_value_t = 1)]
    pub queues: usize,

    #[command(flatten)]
    pub flow: FlowArgs,
}

pub async fn run(common: &Common, args: &Args) -> Result<Report> {
    if args.queues == 0 || args.producers == 0 {
        return Err("throughput needs at least one queue and one producer".into());
    }
    let queues: Vec<String> = (0..args.queues)
        .map(|i| crate::client::unique_name(&format!("throughput.q{i}")))
        .collect();
    declare_queues(&common.uri, &queues, args.flow.persistent).await?;

    let pump = Pump {
        exchange: String::new(),
        keys: Keys::PerProducer(queues.clone()),
        producers: args.producers,
        consumer_queues: (0..args.consumers)
            .map(|j| queues[j % queues.len()].clone())
            .collect(),
        flow: args.flow.clone(),
        seed: 1,
    };
    let result = pump.run(common).await;
    cleanup(&common.uri, &queues, &[]).await;
    let mut result = result?;

    let mut report = common.report("throughput");
    report
        .param("producers", args.producers)
        .param("consumers", args.consumers)
        .param("queues", args.queues);
    args.flow.describe(&mut report);
    report_flow(&mut report, &mut result);
    if args.consumers > 0 {
        // Every message goes to one queue; every queue with a consumer delivers it once.
        let consumed_queues = args.consumers.min(args.queues) as f64;
        note_backlog(&mut report, &result, consumed_queues / args.queues as f64);
    }
    Ok(report)
}

async fn declare_queues(uri: &BrokerUri, queues: &[String], durable: bool) -> Result<()> {
    let incidents = std::sync::Arc::new(Incidents::default());
    let conn = connect(uri, "rmqd-perf setup", 0, &incidents).await?;
    let ch = open_channel(&conn, &incidents, None).await?;
    for q in queues {
        declare_queue(&ch, q, durable).await?;
    }
    let _ = ch.close().await;
    let _ = conn.close().await;
    Ok(())
}
