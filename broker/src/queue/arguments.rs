//! Queue `x-` arguments: validated at declare, compared on redeclare, turned into settings.
//! Each queue feature reads its own setting here by its argument name.

use std::time::Duration;

use rmqd_codec::{FieldTable, FieldValue};

use crate::error::{AmqpError, resource};
use crate::policy::{Policy, QueueLimits};

/// The arguments RabbitMQ compares when a queue is declared again; others may differ freely.
const COMPARED_ON_REDECLARE: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-type",
    "x-single-active-consumer",
];

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct QueueSettings {
    /// `x-message-ttl`: how long a message may wait in this queue.
    pub message_ttl: Option<Duration>,
    /// `x-expires`: delete the queue after this long without consumers or use.
    pub expires: Option<Duration>,
    /// `x-max-priority`: deliver higher-priority messages first, up to this priority.
    pub max_priority: Option<u8>,
}

impl QueueSettings {
    /// The limits in force under `policy`: for each, the stricter of the argument and the
    /// policy, as RabbitMQ resolves `message-ttl` and `expires`.
    pub fn limits_under(&self, policy: Option<&Policy>) -> QueueLimits {
        let from_policy = policy.map(|p| p.queue_limits).unwrap_or_default();
        QueueLimits {
            message_ttl: stricter(self.message_ttl, from_policy.message_ttl),
            expires: stricter(self.expires, from_policy.expires),
        }
    }

    pub fn from_arguments(
        args: &FieldTable,
        queue: &str,
        vhost: &str,
    ) -> Result<QueueSettings, AmqpError> {
        let invalid = |arg: &str, why: String| {
            AmqpError::precondition_failed(format!(
                "invalid arg '{arg}' for {}: {why}",
                resource("queue", &queue, &vhost)
            ))
        };
        let mut settings = QueueSettings::default();
        if let Some(value) = args.get("x-message-ttl") {
            match value.as_i64() {
                Some(ms) if ms >= 0 => {
                    settings.message_ttl = Some(Duration::from_millis(ms as u64));
                }
                Some(ms) => {
                    return Err(invalid("x-message-ttl", format!("{{value_negative,{ms}}}")));
                }
                None => return Err(invalid("x-message-ttl", expected_integer(value))),
            }
        }
        if let Some(value) = args.get("x-expires") {
            match value.as_i64() {
                Some(ms) if ms > 0 => settings.expires = Some(Duration::from_millis(ms as u64)),
                Some(0) => return Err(invalid("x-expires", "{value_zero,0}".to_string())),
                Some(ms) => return Err(invalid("x-expires", format!("{{value_negative,{ms}}}"))),
                None => return Err(invalid("x-expires", expected_integer(value))),
            }
        }
        if let Some(value) = args.get("x-max-priority") {
            match value.as_i64() {
                Some(p) if (0..=255).contains(&p) => settings.max_priority = Some(p as u8),
                Some(p) if p < 0 => {
                    return Err(invalid("x-max-priority", format!("{{value_negative,{p}}}")));
                }
                Some(p) => return Err(invalid("x-max-priority", format!("{{value_too_big,{p}}}"))),
                None => return Err(invalid("x-max-priority", expected_integer(value))),
            }
        }
        Ok(settings)
    }
}

/// The shorter of two optional limits; either alone if only one is set.
pub(crate) fn stricter(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn expected_integer(value: &FieldValue) -> String {
    format!("\"expected integer, got {}\"", type_name(value))
}

/// RabbitMQ's names for field types, as they appear in its error texts.
pub(crate) fn type_name(value: &FieldValue) -> &'static str {
    match value {
        FieldValue::Bool(_) => "bool",
        FieldValue::I8(_) => "byte",
        FieldValue::U8(_) => "unsignedbyte",
        FieldValue::I16(_) => "short",
        FieldValue::U16(_) => "unsignedshort",
        FieldValue::I32(_) => "signedint",
        FieldValue::U32(_) => "unsignedint",
        FieldValue::I64(_) => "long",
        FieldValue::F32(_) => "float",
        FieldValue::F64(_) => "double",
        FieldValue::Decimal(_) => "decimal",
        FieldValue::LongStr(_) => "longstr",
        FieldValue::ByteArray(_) => "binary",
        FieldValue::Array(_) => "array",
        FieldValue::Timestamp(_) => "timestamp",
        FieldValue::Table(_) => "table",
        FieldValue::Void => "void",
    }
}

/// RabbitMQ's rendering of a value in "received ... but current is ..." texts.
pub(crate) fn render(value: Option<&FieldValue>) -> String {
    match value {
        None => "none".to_string(),
        Some(FieldValue::LongStr(b) | FieldValue::ByteArray(b)) => {
            String::from_utf8_lossy(b).into_owned()
        }
        Some(FieldValue::Bool(b)) => b.to_string(),
        Some(v) => match v.as_i64() {
            Some(n) => n.to_string(),
            None => format!("{v:?}"),
        },
    }
}

/// Whether two argument values are the same for RabbitMQ's equivalence check: integers are
/// equal across width tags (a client may send `x-expires` as `I` once and `l` the next time).
pub(crate) fn same_value(a: &FieldValue, b: &FieldValue) -> bool {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x == y,
        _ => match (a.as_bytes(), b.as_bytes()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

/// The 406 for a redeclare whose compared arguments differ from the queue's.
pub(crate) fn check_equivalent(
    current: &FieldTable,
    received: &FieldTable,
    queue: &str,
    vhost: &str,
) -> Result<(), AmqpError> {
    for key in COMPARED_ON_REDECLARE {
        let (now, new) = (current.get(key), received.get(key));
        let equal = match (now, new) {
            (None, None) => true,
            (Some(a), Some(b)) => same_value(a, b),
            _ => false,
        };
        if !equal {
            // RabbitMQ quotes bare values when both sides are present, and names the type when
            // one side is missing.
            let (received, current) = match (new, now) {
                (Some(a), Some(b)) => (
                    format!("'{}'", render(Some(a))),
                    format!("'{}'", render(Some(b))),
                ),
                (a, b) => (described(a), described(b)),
            };
            return Err(AmqpError::precondition_failed(format!(
                "inequivalent arg '{key}' for {}: received {received} but current is {current}",
                resource("queue", &queue, &vhost),
            )));
        }
    }
    Ok(())
}

fn described(value: Option<&FieldValue>) -> String {
    match value {
        None => "none".to_string(),
        Some(v) => format!("the value '{}' of type '{}'", render(Some(v)), type_name(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmqd_codec::ShortStr;

    fn table(entries: &[(&'static str, FieldValue)]) -> FieldTable {
        entries
            .iter()
            .map(|(k, v)| (ShortStr::from_static(k), v.clone()))
            .collect()
    }

    #[test]
    fn ttl_and_expires_parse_from_any_integer_tag() {
        let args = table(&[
            ("x-message-ttl", FieldValue::I64(1500)),
            ("x-expires", FieldValue::U16(60_000)),
        ]);
        let settings = QueueSettings::from_arguments(&args, "q", "/").unwrap();
        assert_eq!(settings.message_ttl, Some(Duration::from_millis(1500)));
        assert_eq!(settings.expires, Some(Duration::from_millis(60_000)));
    }

    #[test]
    fn negative_ttl_is_406() {
        let args = table(&[("x-message-ttl", FieldValue::I32(-1))]);
        let err = QueueSettings::from_arguments(&args, "q", "/").unwrap_err();
        assert_eq!(err.code, 406);
        assert_eq!(
            err.detail,
            "invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-1}"
        );
    }

    #[test]
    fn redeclare_with_other_ttl_is_406_but_same_ttl_in_another_width_is_fine() {
        let current = table(&[("x-message-ttl", FieldValue::I32(100))]);
        assert!(
            check_equivalent(
                &current,
                &table(&[("x-message-ttl", FieldValue::I64(100))]),
                "q",
                "/"
            )
            .is_ok()
        );
        let err = check_equivalent(
            &current,
            &table(&[("x-message-ttl", FieldValue::I32(200))]),
            "q",
            "/",
        )
        .unwrap_err();
        assert_eq!(err.code, 406);
    }

    #[test]
    fn unknown_arguments_may_differ() {
        let current = table(&[("x-custom", FieldValue::I32(1))]);
        assert!(check_equivalent(&current, &FieldTable::new(), "q", "/").is_ok());
    }
}
