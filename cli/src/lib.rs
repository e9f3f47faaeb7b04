//! rmqd, an AMQP 0-9-1 broker wire-compatible with RabbitMQ, as a library for test suites:
//! start one in memory on a free loopback port in well under a millisecond, hand each test a
//! vhost of its own, and let the handle's drop stop it.
//!
//! ```toml
//! [dev-dependencies]
//! rmqd = { version = "0.1", default-features = false }   # no CLI dependencies
//! ```
//!
//! With lapin:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use lapin::{options::*, types::FieldTable, BasicProperties, Connection, ConnectionProperties};
//!
//! let broker = rmqd::EmbeddedBroker::start().await?;
//! let vhost = broker.isolated_vhost(); // this test's own vhost, deleted on drop
//! let conn = Connection::connect(vhost.amqp_url(), ConnectionProperties::default()).await?;
//! let channel = conn.create_channel().await?;
//! channel
//!     .queue_declare("jobs".into(), QueueDeclareOptions::default(), FieldTable::default())
//!     .await?;
//! channel
//!     .basic_publish("".into(), "jobs".into(), BasicPublishOptions::default(), b"hi", BasicProperties::default())
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! With amqprs, which parses the same URLs:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use amqprs::connection::{Connection, OpenConnectionArguments};
//!
//! let broker = rmqd::EmbeddedBroker::builder()
//!     .user("app", "secret")
//!     .vhost("orders")
//!     .start()
//!     .await?;
//! let url = rmqd::amqp_url("127.0.0.1", broker.port(), "app", "secret", "orders");
//! let conn = Connection::open(&OpenConnectionArguments::try_from(url.as_str())?).await?;
//! conn.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The builder also takes a fixed port, a data dir (durable queues survive a restart) and
//! RabbitMQ definitions to preload; `start_blocking()` runs the broker on a runtime of its own
//! for tests that are not async.

pub use rmqd_broker::definitions::Definitions;
pub use rmqd_broker::{
    Broker, BrokerConfig, EmbeddedBroker, EmbeddedBrokerBuilder, IsolatedVhost, amqp_url,
};
