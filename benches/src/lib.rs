//! Benchmark support code: the scenarios of the `rmqd-perf` load generator and the tools they
//! measure with.
//!
//! `rmqd-perf` drives a broker only through [amqprs](https://crates.io/crates/amqprs), a
//! third-party AMQP 0-9-1 client, so that rmqd and RabbitMQ are measured through exactly the same
//! code. Nothing of rmqd is linked into it.
//!
//! - [`client`]: connection URIs, connecting, channel events, publisher-confirm windows.
//! - [`measure`]: the broker's CPU time and RSS from `/proc`, latency percentiles, timestamps.
//! - [`report`]: the human-readable summary and the one JSON line every scenario prints.
//! - [`scenarios`]: one module per scenario, plus [`scenarios::pump`], the producer/consumer
//!   engine that throughput, fanout and topic share.

pub mod client;
pub mod measure;
pub mod report;
pub mod scenarios;

/// Errors are messages for the person running the benchmark: what failed and why.
pub type Result<T> = std::result::Result<T, String>;

/// Adds what was being done to an error from a library.
pub trait Context<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T>;
}

impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> Result<T> {
        self.map_err(|err| format!("{what}: {err}"))
    }
}
