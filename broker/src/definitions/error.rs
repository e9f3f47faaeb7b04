//! Why definitions could not be read or imported. Each error names the item at fault the way
//! RabbitMQ names resources (`queue 'q' in vhost '/'`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DefinitionsError {
    #[error("cannot read definitions file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not JSON, or not the shape of a definitions file.
    #[error("malformed definitions at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{item}: no vhost '{vhost}' in the definitions or the broker")]
    NoSuchVhost { item: String, vhost: String },
    #[error("{item}: no user '{user}' in the definitions or the broker")]
    NoSuchUser { item: String, user: String },
    #[error("{item}: unknown exchange type '{kind}' (rmqd has direct, fanout, topic and headers)")]
    UnknownExchangeType { item: String, kind: String },
    #[error("user '{user}': unknown hashing algorithm '{algorithm}'")]
    UnknownHashingAlgorithm { user: String, algorithm: String },
    /// A binding whose source or destination is neither in the definitions nor in the broker.
    #[error("{item}: {missing} does not exist{hint}")]
    MissingBindingEnd {
        item: String,
        missing: String,
        /// Why it may be missing, when there is a likely reason.
        hint: &'static str,
    },
    /// The item cannot be what the file says: a name too long, arguments that are not valid,
    /// an entity that exists with different properties.
    #[error("{item}: {reason}")]
    Invalid { item: String, reason: String },
}

impl DefinitionsError {
    pub(crate) fn json(err: &serde_json::Error) -> DefinitionsError {
        // serde_json appends the position to its message; it is in the fields instead.
        let text = err.to_string();
        let suffix = format!(" at line {} column {}", err.line(), err.column());
        let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
        DefinitionsError::Json {
            line: err.line(),
            column: err.column(),
            message,
        }
    }

    pub(crate) fn invalid(item: &str, reason: impl Into<String>) -> DefinitionsError {
        DefinitionsError::Invalid {
            item: item.to_string(),
            reason: reason.into(),
        }
    }
}
