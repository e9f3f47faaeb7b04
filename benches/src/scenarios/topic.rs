//! `topic`: one topic exchange, Q queues, K random binding patterns spread over the queues
//! (words from a small vocabulary, all but the first possibly replaced by `*` or `#`). First the bindings are made
//! from several channels at once: the bind rate, and the broker's CPU and RSS per binding. Then
//! producers publish with random routing keys, a share of them (`--match-fraction`) built from
//! a binding's pattern so that they surely match, the rest fully random.

use std::collections::HashSet;
use std::sync::Arc;

use amqprs::channel::QueueBindArguments;

use super::Common;
use super::pump::{FlowArgs, Keys, Pump, close_all, report_flow};
use crate::client::{
    Incidents, cleanup, connect, declare_exchange, declare_queue, open_channel, unique_name,
};
use crate::measure::{Rng, Window};
use crate::report::Report;
use crate::{Context, Result};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Bindings (distinct queue + pattern pairs).
    #[arg(long, short = 'k', default_value_t = 1000)]
    pub bindings: usize,

    /// Queues the bindings are spread over, each with one consumer.
    #[arg(long, short = 'q', default_value_t = 10)]
    pub queues: usize,

    /// Producers, each on its own connection.
    #[arg(long, short = 'x', default_value_t = 1)]
    pub producers: usize,

    /// Distinct words patterns and keys are made of.
    #[arg(long, default_value_t = 20)]
    pub words: usize,

    /// Longest pattern or key, in words (the shortest is one).
    #[arg(long, default_value_t = 4)]
    pub max_words: usize,

    /// Share of routing keys built from a binding's pattern (so that they match it).
    #[arg(long, default_value_t = 0.5)]
    pub match_fraction: f64,

    /// Distinct routing keys producers pick from.
    #[arg(long, default_value_t = 10_000)]
    pub key_pool: usize,

    /// Channels (on one connection) binding at once, each waiting for every bind-ok.
    #[arg(long, default_value_t = 8)]
    pub bind_channels: usize,

    /// Seed for patterns and keys.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    #[command(flatten)]
    pub flow: FlowArgs,
}

/// `*` with this probability per word of a pattern, `#` with [`HASH`], else a word.
const STAR: f64 = 0.15;
const HASH: f64 = 0.05;

fn word(rng: &mut Rng, words: usize) -> String {
    format!("w{}", rng.below(words))
}

/// A pattern of 1 to max_words words: the first a literal word (as in `orders.*.eu` or
/// `logs.#`), each other one `*`, `#` or a word.
fn pattern(rng: &mut Rng, args: &Args) -> String {
    let len = 1 + rng.below(args.max_words);
    let parts: Vec<String> = (0..len)
        .map(|i| {
            if i == 0 {
                word(rng, args.words)
            } else if rng.chance(HASH) {
                "#".to_string()
            } else if rng.chance(STAR) {
                "*".to_string()
            } else {
                word(rng, args.words)
            }
        })
        .collect();
    parts.join(".")
}

/// A key matching `pattern`: `*` becomes a word, `#` zero to two words.
fn key_for(rng: &mut Rng, pattern: &str, words: usize) -> String {
    let mut parts = Vec::new();
    for part in pattern.split('.') {
        match part {
            "*" => parts.push(word(rng, words)),
            "#" => {
                for _ in 0..rng.below(3) {
                    parts.push(word(rng, words));
                }
            }
            w => parts.push(w.to_string()),
        }
    }
    if parts.is_empty() {
        parts.push(word(rng, words));
    }
    parts.join(".")
}

fn random_key(rng: &mut Rng, args: &Args) -> String {
    let len = 1 + rng.below(args.max_words);
    let parts: Vec<String> = (0..len).map(|_| word(rng, args.words)).collect();
    parts.join(".")
}

pub async fn run(common: &Common, args: &Args) -> Result<Report> {
    if args.queues == 0 || args.producers == 0 || args.words == 0 || args.max_words == 0 {
        return Err("topic needs at least one queue, producer and word".into());
    }
    // Distinct (queue, pattern) pairs; give up growing the set if the pattern space is full.
    let mut rng = Rng::new(args.seed);
    let mut bindings: Vec<(usize, String)> = Vec::with_capacity(args.bindings);
    let mut seen = HashSet::with_capacity(args.bindings);
    let mut misses = 0;
    while bindings.len() < args.bindings && misses < 1_000_000 {
        let b = (rng.below(args.queues), pattern(&mut rng, args));
        if seen.insert(b.clone()) {
            bindings.push(b);
        } else {
            misses += 1;
        }
    }
    let keys: Vec<String> = (0..args.key_pool.max(1))
        .map(|_| {
            if !bindings.is_empty() && rng.chance(args.match_fraction) {
                let (_, p) = &bindings[rng.below(bindings.len())];
                key_for(&mut rng, p, args.words)
            } else {
                random_key(&mut rng, args)
            }
        })
        .collect();

    let exchange = unique_name("topic.x");
    let queues: Vec<String> = (0..args.queues)
        .map(|i| unique_name(&format!("topic.q{i}")))
        .collect();

    let incidents = Arc::new(Incidents::default());
    let conn = connect(&common.uri, "rmqd-perf setup", 0, &incidents).await?;
    let ch = open_channel(&conn, &incidents, None).await?;
    let mut broker = super::broker_info(&conn);
    declare_exchange(&ch, &exchange, "topic", args.flow.persistent).await?;
    for q in &queues {
        declare_queue(&ch, q, args.flow.persistent).await?;
    }

    // Bind from several channels at once, each waiting for its bind-ok before the next.
    let start = common.probe.snapshot();
    let bind_result = bind_all(&conn, &incidents, &exchange, &queues, &bindings, args).await;
    let end = common.probe.snapshot();
    let bind_window = Window::between(&start, &end);
    let _ = ch.close().await;
    close_all(vec![conn]).await;

    let result = match bind_result {
        Ok(()) => {
            let pump = Pump {
                exchange: exchange.clone(),
                keys: Keys::Random(Arc::new(keys)),
                producers: args.producers,
                consumer_queues: queues.clone(),
                flow: args.flow.clone(),
                seed: args.seed,
            };
            pump.run(common).await
        }
        Err(err) => Err(err),
    };
    cleanup(&common.uri, &queues, &[exchange]).await;
    let mut result = result?;

    let mut report = common.report("topic");
    report
        .param("bindings", bindings.len())
        .param("queues", args.queues)
        .param("producers", args.producers)
        .param("words", args.words)
        .param("max_words", args.max_words)
        .param("match_fraction", args.match_fraction)
        .param("bind_channels", args.bind_channels);
    args.flow.describe(&mut report);
    let n = bindings.len() as u64;
    report
        .num("bind_rate", Some(bind_window.rate(n)), "bindings/s", 0)
        .num("bind_elapsed_s", Some(bind_window.secs()), "s", 2)
        .num(
            "broker_cpu_us_per_bind",
            // CPU time comes in 10 ms ticks: a shorter bind phase cannot be weighed.
            bind_window
                .broker_cpu_us_per(n)
                .filter(|_| bind_window.secs() >= 1.0),
            "µs",
            2,
        )
        .bytes(
            "broker_rss_per_binding_bytes",
            match (bind_window.broker_rss_start, bind_window.broker_rss_end) {
                (Some(a), Some(b)) if n > 0 => Some((b as f64 - a as f64) / n as f64),
                _ => None,
            },
        );
    if broker.product.is_empty() {
        broker = result.broker.clone();
    }
    report_flow(&mut report, &mut result);
    report.broker(broker);
    report
        .num(
            "deliveries_per_publish",
            (result.published > 0).then(|| result.delivered as f64 / result.published as f64),
            "",
            2,
        )
        .num(
            "broker_cpu_us_per_delivery",
            result.window.broker_cpu_us_per(result.delivered),
            "µs",
            2,
        );
    Ok(report)
}

async fn bind_all(
    conn: &amqprs::connection::Connection,
    incidents: &Arc<Incidents>,
    exchange: &str,
    queues: &[String],
    bindings: &[(usize, String)],
    args: &Args,
) -> Result<()> {
    let channels = args.bind_channels.max(1);
    let mut tasks = Vec::new();
    for c in 0..channels {
        let ch = open_channel(conn, incidents, None).await?;
        let mine: Vec<(String, String)> = bindings
            .iter()
            .skip(c)
            .step_by(channels)
            .map(|(q, p)| (queues[*q].clone(), p.clone()))
            .collect();
        let exchange = exchange.to_string();
        tasks.push(tokio::spawn(async move {
            for (q, p) in &mine {
                ch.queue_bind(QueueBindArguments::new(q, &exchange, p))
                    .await
                    .context(format_args!("binding {q} to {exchange} with {p:?}"))?;
            }
            let _ = ch.close().await;
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.context("bind task")??;
    }
    Ok(())
}
