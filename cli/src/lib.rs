//! rmqd, an AMQP 0-9-1 broker wire-compatible with RabbitMQ, as a library for test suites:
//! start one in memory on a free loopback port in about a millisecond, hand each test a vhost
//! of its own, and let the handle's drop stop it.
//!
//! ```toml
//! [dev-dependencies]
//! rmqd = { version = "0.1", default-features = false }   # no CLI dependencies
//! ```
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! let broker = rmqd::EmbeddedBroker::start().await?;
//! let vhost = broker.isolated_vhost();
//! // Point any AMQP client at vhost.amqp_url(): amqp://guest:guest@127.0.0.1:PORT/isolated-1
//! # let _ = vhost.amqp_url();
//! # Ok(())
//! # }
//! ```
//!
//! With the builder: users, vhosts, a fixed port, a data dir, definitions to preload.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! let broker = rmqd::EmbeddedBroker::builder()
//!     .user("app", "secret")
//!     .vhost("orders")
//!     .start()
//!     .await?;
//! # let _ = broker;
//! # Ok(())
//! # }
//! ```

pub use rmqd_broker::definitions::Definitions;
pub use rmqd_broker::{
    Broker, BrokerConfig, EmbeddedBroker, EmbeddedBrokerBuilder, IsolatedVhost, amqp_url,
};
