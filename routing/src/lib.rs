//! Exchanges and bindings: which queues (or exchanges) a published message reaches.
//!
//! One [`BindingTable`] holds every binding whose source is one exchange, indexed for that
//! exchange's [`ExchangeKind`]: a hash map for direct, a trie of patterns for topic, a list per
//! destination for fanout and headers. Semantics are RabbitMQ 3.10's, the broker the project's
//! recordings were taken from. Destinations are generic so that this crate knows nothing about
//! queues.

mod args;
mod by_destination;
mod by_key;
mod direct;
mod fanout;
mod hash;
mod header_eq;
mod headers;
mod kind;
mod table;
mod topic;
mod trie;

#[cfg(test)]
mod test_support;

pub use kind::ExchangeKind;
pub use table::BindingTable;
