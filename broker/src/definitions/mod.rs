//! RabbitMQ's definitions format (the JSON `rabbitmqctl export_definitions` writes): users,
//! vhosts, permissions, exchanges, queues and bindings, imported into and exported from a broker.
//!
//! - `format`: the file's shape, as RabbitMQ 3.10 writes it (serde types).
//! - `arguments`: JSON argument objects to AMQP field tables and back.
//! - `check` then `import`: a file checked whole, then applied to a broker.
//! - `export` (reading the broker through `topology`): a file written from a broker.
//!
//! `broker/tests/fixtures/rabbitmq-3.10.8-definitions.json` is a real RabbitMQ 3.10.8 export
//! that the tests import and compare exports with.

mod arguments;
mod check;
mod error;
mod export;
mod format;
mod import;
mod kept;
mod topology;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::IgnoredAny;
use tracing::warn;

use crate::broker::Broker;
pub use error::DefinitionsError;
pub use export::{RABBITMQ_FORMAT_VERSION, export};
pub use format::{
    BindingDef, Definitions, DestinationType, ExchangeDef, GlobalParameterDef, ParameterDef,
    PermissionDef, PolicyDef, QueueDef, Tags, TopicPermissionDef, UserDef, VhostDef, VhostMetadata,
};
pub use import::{ImportSummary, import};
pub(crate) use kept::Kept;

/// The top-level keys rmqd reads. RabbitMQ adds others over versions (and tools add their own);
/// they are ignored with a warning.
const KNOWN_KEYS: &[&str] = &[
    "bindings",
    "exchanges",
    "global_parameters",
    "parameters",
    "permissions",
    "policies",
    "product_name",
    "product_version",
    "queues",
    "rabbit_version",
    "rabbitmq_version",
    "topic_permissions",
    "users",
    "vhosts",
];

impl Definitions {
    /// Reads a definitions file's text. An empty text is empty definitions, as in RabbitMQ.
    pub fn from_json(text: &str) -> Result<Definitions, DefinitionsError> {
        if text.trim().is_empty() {
            return Ok(Definitions::default());
        }
        let defs: Definitions =
            serde_json::from_str(text).map_err(|e| DefinitionsError::json(&e))?;
        // Parsed a second time only for the key names: the typed parse above keeps the
        // positions in its errors, which collecting unknown keys through serde's `flatten`
        // would lose.
        let keys: BTreeMap<String, IgnoredAny> =
            serde_json::from_str(text).map_err(|e| DefinitionsError::json(&e))?;
        for key in keys.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            warn!("definitions: ignoring top-level key '{key}', which rmqd does not know");
        }
        Ok(defs)
    }

    /// The definitions as indented JSON, keys in the order RabbitMQ writes them.
    pub fn to_json_pretty(&self) -> String {
        // Every map in these types has string keys and every value is plain data, so
        // serialization has no way to fail.
        serde_json::to_string_pretty(self).expect("definitions always serialize to JSON")
    }
}

/// Reads a definitions file and imports it, as RabbitMQ's `load_definitions` does at boot.
pub fn load_file(broker: &Broker, path: &Path) -> Result<ImportSummary, DefinitionsError> {
    let text = std::fs::read_to_string(path).map_err(|source| DefinitionsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    import(broker, &Definitions::from_json(&text)?)
}
