//! `fanout`: one fanout exchange bound to N queues, one consumer per queue. Every publish is
//! delivered N times; the broker's CPU time is reported per message published and per delivery.

use std::sync::Arc;

use amqprs::channel::QueueBindArguments;

use super::Common;
use super::pump::{FlowArgs, Keys, Pump, note_backlog, report_flow};
use crate::client::{
    Incidents, cleanup, connect, declare_exchange, declare_queue, open_channel, unique_name,
};
use crate::report::Report;
use crate::{Context, Result};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Queues bound to the exchange, each with one consumer on its own connection.
    #[arg(long, short = 'q', default_value_t = 10)]
    pub queues: usize,

    /// Producers, each on its own connection.
    #[arg(long, short = 'x', default_value_t = 1)]
    pub producers: usize,

    #[command(flatten)]
    pub flow: FlowArgs,
}

pub async fn run(common: &Common, args: &Args) -> Result<Report> {
    if args.queues == 0 || args.producers == 0 {
        return Err("fanout needs at least one queue and one producer".into());
    }
    let exchange = unique_name("fanout.x");
    let queues: Vec<String> = (0..args.queues)
        .map(|i| unique_name(&format!("fanout.q{i}")))
        .collect();

    let incidents = Arc::new(Incidents::default());
    let conn = connect(&common.uri, "rmqd-perf setup", 0, &incidents).await?;
    let ch = open_channel(&conn, &incidents, None).await?;
    declare_exchange(&ch, &exchange, "fanout", args.flow.persistent).await?;
    for q in &queues {
        declare_queue(&ch, q, args.flow.persistent).await?;
        ch.queue_bind(QueueBindArguments::new(q, &exchange, ""))
            .await
            .context(format_args!("binding {q} to {exchange}"))?;
    }
    let _ = ch.close().await;
    let _ = conn.close().await;

    let pump = Pump {
        exchange: exchange.clone(),
        keys: Keys::PerProducer(vec![String::new()]),
        producers: args.producers,
        consumer_queues: queues.clone(),
        flow: args.flow.clone(),
        seed: 1,
    };
    let result = pump.run(common).await;
    cleanup(&common.uri, &queues, &[exchange]).await;
    let mut result = result?;

    let mut report = common.report("fanout");
    report
        .param("queues", args.queues)
        .param("producers", args.producers);
    args.flow.describe(&mut report);
    report_flow(&mut report, &mut result);
    note_backlog(&mut report, &result, args.queues as f64);
    report.num(
        "broker_cpu_us_per_delivery",
        result.window.broker_cpu_us_per(result.delivered),
        "µs",
        2,
    );
    Ok(report)
}
