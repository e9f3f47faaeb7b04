//! Exchanges and bindings.
