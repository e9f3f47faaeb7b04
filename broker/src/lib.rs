//! The rmqd broker.
//!
//! [`Connection`] is the per-socket AMQP state machine: it consumes bytes, produces bytes, and
//! never touches a socket or a clock itself. [`server`] drives one per TCP connection with tokio.
//! Shared state lives in [`Broker`]: vhosts with their exchanges, queues and bindings, and users.

mod auth;
mod broker;
mod channel;
mod connection;
mod durable;
mod error;
mod memory;
mod message;
mod metrics;
mod names;
mod outbox;
mod queue;
pub mod server;
pub mod store;
mod vhost;

pub use auth::{LoginError, Users};
pub use broker::{Broker, BrokerConfig};
pub use connection::{Connection, ConnectionId};
pub use error::AmqpError;
pub use memory::MemoryTracker;
pub use metrics::Metrics;
pub use queue::{Queue, QueueCounts};
pub use vhost::{Destination, Exchange, Vhost};
