//! A policy's definition: the keys RabbitMQ 3.10 recognises for queues and exchanges, checked
//! as RabbitMQ checks them and refused with its texts, and what rmqd's queue features take
//! from them.

use std::time::Duration;

use serde_json::{Map, Value};

use super::PolicyError;

/// Every key a RabbitMQ 3.10 node without plugins accepts in a policy. A definitions file
/// exported from such a node therefore always imports; keys for features rmqd has not built
/// yet are kept, listed and exported, and take effect when the feature lands.
const RECOGNISED: &[(&str, Check)] = &[
    ("message-ttl", Check::Integer(0, "message TTL")),
    ("expires", Check::Integer(1, "queue expiry")),
    ("max-length", Check::Integer(0, "maximum length")),
    (
        "max-length-bytes",
        Check::Integer(0, "maximum length in bytes"),
    ),
    ("delivery-limit", Check::Integer(0, "delivery limit")),
    ("dead-letter-exchange", Check::Text("dead letter exchange")),
    (
        "dead-letter-routing-key",
        Check::Text("dead letter routing key"),
    ),
    ("alternate-exchange", Check::Text("alternate exchange name")),
    (
        "overflow",
        Check::OneOf(
            &["drop-head", "reject-publish", "reject-publish-dlx"],
            "overflow value",
        ),
    ),
    (
        "queue-mode",
        Check::OneOf(&["default", "lazy"], "queue-mode value"),
    ),
    (
        "queue-version",
        Check::OneOfNumber(&[1, 2], "queue version"),
    ),
    ("max-age", Check::Text("max-age")),
    (
        "stream-max-segment-size-bytes",
        Check::Integer(0, "segment size"),
    ),
    (
        "queue-master-locator",
        Check::OneOf(
            &["client-local", "min-masters", "random"],
            "queue-master-locator value",
        ),
    ),
    (
        "ha-mode",
        Check::OneOf(&["all", "exactly", "nodes"], "ha-mode value"),
    ),
    ("ha-params", Check::Any),
    (
        "ha-sync-mode",
        Check::OneOf(&["manual", "automatic"], "ha-sync-mode value"),
    ),
    (
        "ha-sync-batch-size",
        Check::Integer(1, "ha-sync-batch-size value"),
    ),
    (
        "ha-promote-on-shutdown",
        Check::OneOf(&["always", "when-synced"], "ha-promote-on-shutdown value"),
    ),
    (
        "ha-promote-on-failure",
        Check::OneOf(&["always", "when-synced"], "ha-promote-on-failure value"),
    ),
    (
        "initial-cluster-size",
        Check::Integer(1, "initial cluster size"),
    ),
];

enum Check {
    /// An integer at least this large.
    Integer(i64, &'static str),
    Text(&'static str),
    OneOf(&'static [&'static str], &'static str),
    OneOfNumber(&'static [i64], &'static str),
    Any,
}

/// Refuses unknown keys and bad values, with RabbitMQ's "Validation failed" texts.
pub(super) fn validate(definition: &Map<String, Value>) -> Result<(), PolicyError> {
    if definition.is_empty() {
        return Err(PolicyError::Invalid("no policy provided".to_string()));
    }
    let unknown: Vec<String> = definition
        .iter()
        .filter(|(key, _)| !RECOGNISED.iter().any(|(known, _)| known == key))
        .map(|(key, value)| format!("{{{},{}}}", erlang_binary(key), erlang_term(value)))
        .collect();
    if !unknown.is_empty() {
        return Err(PolicyError::Invalid(format!(
            "[{}] are not recognised policy settings",
            unknown.join(",")
        )));
    }
    for (key, value) in definition {
        let Some((_, check)) = RECOGNISED.iter().find(|(known, _)| known == key) else {
            continue;
        };
        let valid = match check {
            Check::Integer(min, _) => value.as_i64().is_some_and(|n| n >= *min),
            Check::Text(_) => value.is_string(),
            Check::OneOf(allowed, _) => value.as_str().is_some_and(|s| allowed.contains(&s)),
            Check::OneOfNumber(allowed, _) => value.as_i64().is_some_and(|n| allowed.contains(&n)),
            Check::Any => true,
        };
        let what = match check {
            Check::Integer(_, what)
            | Check::Text(what)
            | Check::OneOf(_, what)
            | Check::OneOfNumber(_, what) => what,
            Check::Any => continue,
        };
        if !valid {
            return Err(PolicyError::Invalid(format!(
                "{} is not a valid {what}",
                erlang_term(value)
            )));
        }
    }
    Ok(())
}

/// What a policy sets for the queue features rmqd has. RabbitMQ applies the stricter of a
/// policy's value and the queue's own `x-` argument for limits like these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct QueueLimits {
    pub message_ttl: Option<Duration>,
    pub expires: Option<Duration>,
}

impl QueueLimits {
    pub(super) fn from_definition(definition: &Map<String, Value>) -> QueueLimits {
        let millis = |key: &str| {
            definition
                .get(key)
                .and_then(Value::as_u64)
                .map(Duration::from_millis)
        };
        QueueLimits {
            message_ttl: millis("message-ttl"),
            expires: millis("expires").filter(|d| !d.is_zero()),
        }
    }
}

fn erlang_binary(text: &str) -> String {
    format!("<<{}>>", Value::String(text.to_string()))
}

/// A JSON value as Erlang's `~p` prints what RabbitMQ decoded it to, for error texts.
fn erlang_term(value: &Value) -> String {
    match value {
        Value::String(s) => erlang_binary(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(erlang_term).collect::<Vec<_>>().join(",")
        ),
        Value::Object(map) => format!(
            "[{}]",
            map.iter()
                .map(|(k, v)| format!("{{{},{}}}", erlang_binary(k), erlang_term(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(value: Value) -> Result<(), String> {
        match value {
            Value::Object(map) => validate(&map).map_err(|e| e.to_string()),
            _ => unreachable!(),
        }
    }

    #[test]
    fn unknown_keys_are_named_as_rabbitmq_names_them() {
        assert_eq!(
            check(json!({"foo": 1})).unwrap_err(),
            "Validation failed\n\n[{<<\"foo\">>,1}] are not recognised policy settings"
        );
    }

    #[test]
    fn bad_values_are_refused_with_rabbitmqs_text() {
        assert_eq!(
            check(json!({"message-ttl": "a"})).unwrap_err(),
            "Validation failed\n\n<<\"a\">> is not a valid message TTL"
        );
        assert!(check(json!({"expires": 0})).is_err());
        assert!(check(json!({"overflow": "drop-tail"})).is_err());
    }

    #[test]
    fn every_key_rabbitmq_exports_is_accepted() {
        check(json!({
            "message-ttl": 0, "expires": 1, "max-length": 10, "max-length-bytes": 1024,
            "overflow": "reject-publish", "dead-letter-exchange": "dlx",
            "dead-letter-routing-key": "dead", "queue-mode": "lazy", "ha-mode": "all",
            "alternate-exchange": "ae"
        }))
        .unwrap();
    }

    #[test]
    fn limits_are_read_in_milliseconds() {
        let Value::Object(map) = json!({"message-ttl": 1500, "expires": 60000}) else {
            unreachable!()
        };
        assert_eq!(
            QueueLimits::from_definition(&map),
            QueueLimits {
                message_ttl: Some(Duration::from_millis(1500)),
                expires: Some(Duration::from_secs(60)),
            }
        );
    }
}
