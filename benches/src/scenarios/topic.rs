//! `topic`: one topic exchange, Q queues, K random binding patterns spread over the queues
//! (words from a vocabulary, all but the first possibly replaced by `*` or `#`). First the
//! bindings are made from several channels at once: the bind rate, and the broker's CPU and RSS
//! per binding. Then producers publish with random routing keys, a share of them
//! (`--match-fraction`) built from a binding's pattern so that they surely match, the rest fully
//! random.
//!
//! The vocabulary grows with the binding count (see [`default_words`]) so that a key matches
//! about as many bindings, and reaches about as many queues, at 10 bindings as at 100,000: the
//! broker's CPU per message then compares the cost of routing, not of fan-out. The report's
//! `deliveries_per_publish` shows whether that held. The criterion bench `benches/topic.rs`
//! draws its bindings and keys from the same functions.

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

    /// Distinct words patterns and keys are made of [default: max(20, bindings / 2), so that a
    /// key matches about as many bindings whatever their number].
    #[arg(long)]
    pub words: Option<usize>,

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

/// The smallest default vocabulary. It keeps 10 bindings on the 20 words every count used
/// before the vocabulary grew, so results at that size stay comparable; and with fewer words
/// the later words of patterns would match random keys far more often than at larger counts.
const MIN_WORDS: usize = 20;

/// The default vocabulary for `bindings` bindings. A pattern's first word is literal, so a key
/// can match only the patterns that share its first word, bindings / words of them on average:
/// with a fixed vocabulary that number grows with the bindings (at 100,000 over 20 words every
/// key reached all 10 queues), while half the binding count keeps it near two.
pub fn default_words(bindings: usize) -> usize {
    (bindings / 2).max(MIN_WORDS)
}

/// What patterns and routing keys are made of.
#[derive(Debug, Clone, Copy)]
pub struct Vocabulary {
    /// Distinct words (at least one).
    pub words: usize,
    /// Longest pattern or key, in words (at least one).
    pub max_words: usize,
}

impl Vocabulary {
    fn word(&self, rng: &mut Rng) -> String {
        format!("w{}", rng.below(self.words))
    }

    /// A pattern of 1 to max_words words: the first a literal word (as in `orders.*.eu` or
    /// `logs.#`), each other one `*`, `#` or a word.
    pub fn pattern(&self, rng: &mut Rng) -> String {
        let len = 1 + rng.below(self.max_words);
        let parts: Vec<String> = (0..len)
            .map(|i| {
                if i == 0 {
                    self.word(rng)
                } else if rng.chance(HASH) {
                    "#".to_string()
                } else if rng.chance(STAR) {
                    "*".to_string()
                } else {
                    self.word(rng)
                }
            })
            .collect();
        parts.join(".")
    }

    /// A key matching `pattern`: `*` becomes a word, `#` zero to two words.
    pub fn key_for(&self, rng: &mut Rng, pattern: &str) -> String {
        let mut parts = Vec::new();
        for part in pattern.split('.') {
            match part {
                "*" => parts.push(self.word(rng)),
                "#" => {
                    for _ in 0..rng.below(3) {
                        parts.push(self.word(rng));
                    }
                }
                w => parts.push(w.to_string()),
            }
        }
        if parts.is_empty() {
            parts.push(self.word(rng));
        }
        parts.join(".")
    }

    /// A key of 1 to max_words random words.
    pub fn random_key(&self, rng: &mut Rng) -> String {
        let len = 1 + rng.below(self.max_words);
        let parts: Vec<String> = (0..len).map(|_| self.word(rng)).collect();
        parts.join(".")
    }

    /// Up to `count` distinct (queue, pattern) pairs over `queues` queues; fewer if the pattern
    /// space runs out.
    pub fn bindings(&self, rng: &mut Rng, count: usize, queues: usize) -> Vec<(usize, String)> {
        let mut bindings = Vec::with_capacity(count);
        let mut seen = HashSet::with_capacity(count);
        let mut misses = 0;
        while bindings.len() < count && misses < 1_000_000 {
            let b = (rng.below(queues), self.pattern(rng));
            if seen.insert(b.clone()) {
                bindings.push(b);
            } else {
                misses += 1;
            }
        }
        bindings
    }

    /// `count` routing keys, each built from a random binding's pattern with probability
    /// `match_fraction`, else random.
    pub fn keys(
        &self,
        rng: &mut Rng,
        count: usize,
        match_fraction: f64,
        bindings: &[(usize, String)],
    ) -> Vec<String> {
        (0..count)
            .map(|_| {
                if !bindings.is_empty() && rng.chance(match_fraction) {
                    let (_, p) = &bindings[rng.below(bindings.len())];
                    self.key_for(rng, p)
                } else {
                    self.random_key(rng)
                }
            })
            .collect()
    }
}

pub async fn run(common: &Common, args: &Args) -> Result<Report> {
    let vocabulary = Vocabulary {
        words: args.words.unwrap_or_else(|| default_words(args.bindings)),
        max_words: args.max_words,
    };
    if args.queues == 0 || args.producers == 0 || vocabulary.words == 0 || args.max_words == 0 {
        return Err("topic needs at least one queue, producer and word".into());
    }
    let mut rng = Rng::new(args.seed);
    let bindings = vocabulary.bindings(&mut rng, args.bindings, args.queues);
    let keys = vocabulary.keys(
        &mut rng,
        args.key_pool.max(1),
        args.match_fraction,
        &bindings,
    );

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
        .param("words", vocabulary.words)
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
