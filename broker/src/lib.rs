//! The rmqd broker.
//!
//! [`Connection`] is the per-socket AMQP state machine: it consumes bytes, produces bytes, and
//! never touches a socket or a clock itself. [`server`] drives one per TCP connection with tokio.
//! Shared state lives in [`Broker`]: vhosts with their exchanges, queues and bindings, and users.

pub mod admin;
mod auth;
mod broker;
mod channel;
mod connection;
mod connections;
pub mod definitions;
mod disk;
mod durable;
mod embedded;
mod error;
mod memory;
mod message;
mod metrics;
mod names;
mod outbox;
pub mod policy;
mod queue;
pub mod server;
mod setup;
pub mod store;
mod vhost;

pub use auth::{
    Access, HashingAlgorithm, InvalidPermission, LoginError, PasswordHash, Permissions, User,
    UserError, UserPermissions, Users,
};
pub use broker::{Broker, BrokerConfig};
pub use connection::{Connection, ConnectionId};
pub use embedded::{EmbeddedBroker, EmbeddedBrokerBuilder, IsolatedVhost};
pub use error::AmqpError;
pub use memory::{MemoryTracker, physical_memory};
pub use metrics::Metrics;
pub use queue::{Queue, QueueCounts};
pub use setup::{Setup, amqp_url, amqp_url_without_password};
pub use vhost::{Destination, Exchange, Vhost};
