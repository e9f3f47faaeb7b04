//! Topic routing microbenchmarks: one topic exchange's [`BindingTable`] with 10, 1,000 and
//! 100,000 random bindings over 10 queues. Bindings and keys come from the `topic` scenario of
//! rmqd-perf, through the same functions, so its vocabulary rule holds here too: words grow with
//! the bindings, a key matches about as many of them at every size, and whatever growth the
//! time per route shows is the trie's, not fan-out's. Destinations are queue names, as the
//! broker's are, so that hashing and comparing them costs what it does there.
//!
//! - `topic_route/N`: routing one key, half built from a binding's pattern and half random,
//!   cycling through a pool of keys. Before measuring, the mean number of bindings and of
//!   queues a key reaches is printed for each size: the times are comparable only while those
//!   stay close.
//! - `topic_bind_unbind/N`: binding a new (queue, pattern) pair and unbinding it again, so the
//!   table is back to N bindings after every iteration.
//!
//! At 100,000 bindings the tables outgrow the caches, and the time depends on how much of the
//! shared last-level cache other work leaves: compare builds in alternating runs.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rmqd_benches::measure::Rng;
use rmqd_benches::scenarios::topic::{Vocabulary, default_words};
use rmqd_codec::{FieldTable, ShortStr};
use rmqd_routing::{BindingTable, ExchangeKind};

const SIZES: [usize; 3] = [10, 1_000, 100_000];
const QUEUES: usize = 10;
const MAX_WORDS: usize = 4;
/// Routing keys cycled through, as many as the scenario's default `--key-pool`.
const KEYS: usize = 10_000;
/// The scenario's default `--match-fraction`.
const MATCH_FRACTION: f64 = 0.5;
/// (queue, pattern) pairs not in the table, bound and unbound in turn.
const SPARE: usize = 1_000;

struct Setup {
    table: BindingTable<ShortStr>,
    keys: Vec<String>,
    spare: Vec<(ShortStr, ShortStr)>,
}

fn short(s: &str) -> ShortStr {
    ShortStr::try_from(s).expect("generated patterns are short")
}

fn setup(size: usize) -> Setup {
    let vocabulary = Vocabulary {
        words: default_words(size),
        max_words: MAX_WORDS,
    };
    let mut rng = Rng::new(size as u64);
    let bindings = vocabulary.bindings(&mut rng, size, QUEUES);
    assert_eq!(
        bindings.len(),
        size,
        "the pattern space holds {size} bindings"
    );
    let keys = vocabulary.keys(&mut rng, KEYS, MATCH_FRACTION, &bindings);

    let queues: Vec<ShortStr> = (0..QUEUES)
        .map(|i| short(&format!("rmqd-perf.topic.q{i}.4242.1767225600000")))
        .collect();
    let mut table = BindingTable::new(ExchangeKind::Topic);
    let args = FieldTable::new();
    for (queue, pattern) in &bindings {
        assert!(table.bind(&short(pattern), &args, queues[*queue].clone()));
    }

    // Spare pairs must be absent, or bind would refuse them and unbind remove a real binding.
    let bound: HashSet<&(usize, String)> = bindings.iter().collect();
    let mut spare = Vec::with_capacity(SPARE);
    let mut fresh = HashSet::new();
    while spare.len() < SPARE {
        let pair = (rng.below(QUEUES), vocabulary.pattern(&mut rng));
        if !bound.contains(&pair) && fresh.insert(pair.clone()) {
            spare.push((queues[pair.0].clone(), short(&pair.1)));
        }
    }

    report_matches(size, &bindings, &keys, &table);
    Setup { table, keys, spare }
}

/// Prints how many bindings and queues a key reaches on average at this size.
fn report_matches(
    size: usize,
    bindings: &[(usize, String)],
    keys: &[String],
    table: &BindingTable<ShortStr>,
) {
    // One destination per binding makes the number of destinations the number of matches.
    let mut per_binding = BindingTable::new(ExchangeKind::Topic);
    for (i, (_, pattern)) in bindings.iter().enumerate() {
        per_binding.bind(&short(pattern), &FieldTable::new(), i as u32);
    }
    let (mut matched, mut reached) = (Vec::new(), Vec::new());
    let (mut matches, mut reaches) = (0, 0);
    for key in keys {
        matched.clear();
        per_binding.route(key.as_bytes(), None, &mut matched);
        matches += matched.len();
        reached.clear();
        table.route(key.as_bytes(), None, &mut reached);
        reaches += reached.len();
    }
    let n = keys.len() as f64;
    println!(
        "topic {size} bindings, {} words: a key matches {:.2} bindings and reaches {:.2} of {QUEUES} queues on average",
        default_words(size),
        matches as f64 / n,
        reaches as f64 / n,
    );
}

fn topic(c: &mut Criterion) {
    let setups: Vec<(usize, Setup)> = SIZES.iter().map(|&n| (n, setup(n))).collect();

    let mut group = c.benchmark_group("topic_route");
    group.throughput(Throughput::Elements(1));
    for (size, s) in &setups {
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            let mut out = Vec::new();
            let mut next = 0;
            b.iter(|| {
                let key = &s.keys[next];
                next = (next + 1) % s.keys.len();
                out.clear();
                s.table.route(black_box(key.as_bytes()), None, &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("topic_bind_unbind");
    group.throughput(Throughput::Elements(1));
    for (size, mut s) in setups {
        let args = FieldTable::new();
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            let mut next = 0;
            b.iter(|| {
                let (queue, pattern) = &s.spare[next];
                next = (next + 1) % s.spare.len();
                let bound = s.table.bind(black_box(pattern), &args, queue.clone());
                let unbound = s.table.unbind(black_box(pattern), &args, queue);
                assert!(bound && unbound);
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: the machine is small and shared, and the differences looked for are large.
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    targets = topic
}
criterion_main!(benches);
