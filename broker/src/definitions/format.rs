//! The definitions file as RabbitMQ 3.10 writes it. Fields are declared in the order RabbitMQ
//! writes them (its JSON encoder sorts keys), so that an export diffs cleanly against one of
//! RabbitMQ's. Reading is lenient where RabbitMQ's own import is, or where older versions
//! wrote something else: tags as a list or a comma-separated string, fields left out.

use crate::policy::{ApplyTo, Policy, PolicyError};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Everything a definitions file holds; a file may leave out any part. Topic permissions,
/// parameters and global parameters are kept and exported, but rmqd does not apply them yet
/// (import says so).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Definitions {
    pub bindings: Vec<BindingDef>,
    pub exchanges: Vec<ExchangeDef>,
    pub global_parameters: Vec<GlobalParameterDef>,
    pub parameters: Vec<ParameterDef>,
    pub permissions: Vec<PermissionDef>,
    pub policies: Vec<PolicyDef>,
    /// Written by the management plugin's export and by rmqd ("rmqd"); `rabbitmqctl` leaves it
    /// out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_version: Option<String>,
    pub queues: Vec<QueueDef>,
    /// The RabbitMQ version the file comes from; RabbitMQ reads it to guess the hashing
    /// algorithm of users written without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rabbit_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rabbitmq_version: Option<String>,
    pub topic_permissions: Vec<TopicPermissionDef>,
    pub users: Vec<UserDef>,
    pub vhosts: Vec<VhostDef>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct UserDef {
    /// RabbitMQ's module name, e.g. `rabbit_password_hashing_sha256`. Files from RabbitMQ 3.5
    /// and older have none: their hashes are MD5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashing_algorithm: Option<String>,
    /// Per-user connection and channel limits; kept, not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Value>,
    pub name: String,
    /// A clear-text password, which RabbitMQ also accepts in hand-written files; hashed on
    /// import, never written.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// Base64 of salt and digest; empty (or absent, with no `password`) for a user who cannot
    /// log in with a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub tags: Tags,
}

/// User and vhost tags: RabbitMQ 3.10 writes a list, older versions (and vhosts created without
/// tags) a comma-separated string. Always written as a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tags(pub Vec<String>);

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Tags, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            List(Vec<String>),
            CommaSeparated(String),
        }
        let tags = match Written::deserialize(deserializer).map_err(|_| {
            de::Error::custom("tags must be a list of strings or a comma-separated string")
        })? {
            Written::List(tags) => tags,
            Written::CommaSeparated(text) => text.split(',').map(str::to_string).collect(),
        };
        Ok(Tags(
            tags.iter()
                .map(|t| t.trim())
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
        ))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct VhostDef {
    /// RabbitMQ writes `[["max-connections", 100], ...]`; kept as written, not applied.
    #[serde(default = "empty_list")]
    pub limits: Value,
    #[serde(default)]
    pub metadata: VhostMetadata,
    pub name: String,
}

fn empty_list() -> Value {
    Value::Array(Vec::new())
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct VhostMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_queue_type: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PermissionDef {
    pub configure: String,
    pub read: String,
    pub user: String,
    pub vhost: String,
    pub write: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TopicPermissionDef {
    pub exchange: String,
    pub read: String,
    pub user: String,
    pub vhost: String,
    pub write: String,
}

/// A vhost-scoped runtime parameter (federation upstreams, shovels, vhost limits...).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ParameterDef {
    pub component: String,
    pub name: String,
    pub value: Value,
    pub vhost: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct GlobalParameterDef {
    pub name: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PolicyDef {
    #[serde(rename = "apply-to", default = "apply_to_all")]
    pub apply_to: String,
    pub definition: Map<String, Value>,
    pub name: String,
    pub pattern: String,
    #[serde(default)]
    pub priority: i64,
    pub vhost: String,
}

fn apply_to_all() -> String {
    "all".to_string()
}

impl PolicyDef {
    pub fn from_policy(vhost: &str, policy: &Policy) -> PolicyDef {
        PolicyDef {
            apply_to: policy.apply_to.name().to_string(),
            definition: policy.definition.clone(),
            name: policy.name.clone(),
            pattern: policy.pattern.clone(),
            priority: policy.priority,
            vhost: vhost.to_string(),
        }
    }

    /// The policy, checked as `set_policy` checks one.
    pub fn to_policy(&self) -> Result<Policy, PolicyError> {
        Policy::new(
            &self.name,
            &self.pattern,
            ApplyTo::parse(&self.apply_to)?,
            self.definition.clone(),
            self.priority,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct QueueDef {
    /// `x-` arguments, in JSON: see [`super::arguments`] for how they become a field table.
    #[serde(default)]
    pub arguments: Map<String, Value>,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default = "yes")]
    pub durable: bool,
    pub name: String,
    /// `classic`, `quorum` or `stream`; informational, the `x-queue-type` argument decides.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub queue_type: Option<String>,
    pub vhost: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ExchangeDef {
    #[serde(default)]
    pub arguments: Map<String, Value>,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default = "yes")]
    pub durable: bool,
    /// RabbitMQ 3.10 leaves this out (it does not export internal exchanges at all); rmqd
    /// writes it for internal exchanges only, and RabbitMQ's import reads it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub internal: bool,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub vhost: String,
}

fn yes() -> bool {
    true
}

fn is_false(value: &bool) -> bool {
    !value
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct BindingDef {
    #[serde(default)]
    pub arguments: Map<String, Value>,
    pub destination: String,
    pub destination_type: DestinationType,
    #[serde(default)]
    pub routing_key: String,
    pub source: String,
    pub vhost: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationType {
    Exchange,
    Queue,
}

impl DestinationType {
    pub fn name(self) -> &'static str {
        match self {
            DestinationType::Exchange => "exchange",
            DestinationType::Queue => "queue",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_read_as_list_or_comma_separated_string() {
        let list: Tags = serde_json::from_str(r#"["administrator", "monitoring"]"#).unwrap();
        let text: Tags = serde_json::from_str(r#""administrator, monitoring""#).unwrap();
        assert_eq!(list, text);
        assert_eq!(list.0, ["administrator", "monitoring"]);
        let none: Tags = serde_json::from_str(r#""""#).unwrap();
        assert!(none.0.is_empty());
        assert!(serde_json::from_str::<Tags>("17").is_err());
        assert_eq!(
            serde_json::to_string(&text).unwrap(),
            r#"["administrator","monitoring"]"#
        );
    }

    #[test]
    fn rabbitmq_2_x_style_entries_take_defaults() {
        let queue: QueueDef = serde_json::from_str(r#"{"name": "q", "vhost": "/"}"#).unwrap();
        assert!(queue.durable && !queue.auto_delete && queue.arguments.is_empty());
        let exchange: ExchangeDef =
            serde_json::from_str(r#"{"name": "x", "vhost": "/", "type": "direct"}"#).unwrap();
        assert!(exchange.durable && !exchange.internal);
        let user: UserDef = serde_json::from_str(r#"{"name": "u"}"#).unwrap();
        assert!(user.password_hash.is_none() && user.tags.0.is_empty());
    }

    #[test]
    fn clear_text_passwords_are_read_but_never_written() {
        let user: UserDef =
            serde_json::from_str(r#"{"name": "u", "password": "p", "tags": ""}"#).unwrap();
        assert_eq!(user.password.as_deref(), Some("p"));
        assert!(!serde_json::to_string(&user).unwrap().contains("\"p\""));
    }
}
