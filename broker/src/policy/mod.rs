//! Policies, as `rabbitmqctl set_policy` makes them: a name, a regular expression over queue
//! or exchange names, a definition of settings, and a priority. The highest-priority policy
//! whose pattern matches a queue applies to it, now and whenever policies change.

mod definition;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use regex::Regex;
use serde_json::{Map, Value};

pub(crate) use definition::QueueLimits;

/// What kinds of things a policy applies to (`--apply-to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyTo {
    Queues,
    Exchanges,
    All,
}

impl ApplyTo {
    pub fn parse(text: &str) -> Result<ApplyTo, PolicyError> {
        match text {
            "queues" => Ok(ApplyTo::Queues),
            "exchanges" => Ok(ApplyTo::Exchanges),
            "all" => Ok(ApplyTo::All),
            other => Err(PolicyError::Invalid(format!(
                "apply-to '{other}' unrecognised; should be 'queues', 'exchanges' or 'all'"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ApplyTo::Queues => "queues",
            ApplyTo::Exchanges => "exchanges",
            ApplyTo::All => "all",
        }
    }
}

/// Why a policy was refused; the texts are RabbitMQ's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("Validation failed\n\n{0}")]
    Invalid(String),
    #[error("JSON decoding error. Reason: {0}")]
    NotJson(String),
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub pattern: String,
    pub apply_to: ApplyTo,
    pub definition: Map<String, Value>,
    pub priority: i64,
    regex: Regex,
    pub(crate) queue_limits: QueueLimits,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Policy) -> bool {
        (
            &self.name,
            &self.pattern,
            self.apply_to,
            &self.definition,
            self.priority,
        ) == (
            &other.name,
            &other.pattern,
            other.apply_to,
            &other.definition,
            other.priority,
        )
    }
}

impl Policy {
    /// A policy checked as RabbitMQ checks one: the pattern must compile and every key of the
    /// definition must be a known setting with a valid value.
    pub fn new(
        name: &str,
        pattern: &str,
        apply_to: ApplyTo,
        definition: Map<String, Value>,
        priority: i64,
    ) -> Result<Policy, PolicyError> {
        let regex = Regex::new(pattern).map_err(|err| {
            PolicyError::Invalid(format!(
                "pattern should be regular expression but is invalid: {}",
                first_line(&err.to_string())
            ))
        })?;
        definition::validate(&definition)?;
        Ok(Policy {
            name: name.to_string(),
            pattern: pattern.to_string(),
            apply_to,
            queue_limits: QueueLimits::from_definition(&definition),
            definition,
            priority,
            regex,
        })
    }

    /// As [`Policy::new`], with the definition as the JSON text `set_policy` is given.
    pub fn from_json(
        name: &str,
        pattern: &str,
        apply_to: ApplyTo,
        definition: &str,
        priority: i64,
    ) -> Result<Policy, PolicyError> {
        match serde_json::from_str(definition) {
            Ok(Value::Object(map)) => Self::new(name, pattern, apply_to, map, priority),
            Ok(_) => Err(PolicyError::Invalid(
                "definition must be a JSON object".to_string(),
            )),
            Err(_) => Err(PolicyError::NotJson("badarg".to_string())),
        }
    }

    /// The definition as `list_policies` prints it.
    pub fn definition_json(&self) -> String {
        Value::Object(self.definition.clone()).to_string()
    }

    fn applies_to_queue(&self, name: &str) -> bool {
        self.apply_to != ApplyTo::Exchanges && self.regex.is_match(name)
    }

    fn applies_to_exchange(&self, name: &str) -> bool {
        self.apply_to != ApplyTo::Queues && self.regex.is_match(name)
    }
}

fn first_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or(text)
}

/// A vhost's policies, by name.
#[derive(Default)]
pub(crate) struct Policies {
    by_name: RwLock<BTreeMap<String, Arc<Policy>>>,
}

impl Policies {
    /// Adds or replaces a policy; returns whether anything changed.
    pub fn set(&self, policy: Policy) -> bool {
        let mut by_name = self.by_name.write();
        if by_name.get(&policy.name).is_some_and(|p| **p == policy) {
            return false;
        }
        by_name.insert(policy.name.clone(), Arc::new(policy));
        true
    }

    pub fn clear(&self, name: &str) -> bool {
        self.by_name.write().remove(name).is_some()
    }

    pub fn clear_all(&self) {
        self.by_name.write().clear();
    }

    pub fn list(&self) -> Vec<Arc<Policy>> {
        self.by_name.read().values().cloned().collect()
    }

    /// The policy for a queue: the matching one of highest priority, the first by name among
    /// equals so that the choice does not change from one run to the next.
    pub fn for_queue(&self, name: &str) -> Option<Arc<Policy>> {
        self.best(|p| p.applies_to_queue(name))
    }

    pub fn for_exchange(&self, name: &str) -> Option<Arc<Policy>> {
        self.best(|p| p.applies_to_exchange(name))
    }

    fn best(&self, applies: impl Fn(&Policy) -> bool) -> Option<Arc<Policy>> {
        let by_name = self.by_name.read();
        let mut best: Option<&Arc<Policy>> = None;
        for policy in by_name.values().filter(|p| applies(p)) {
            if best.is_none_or(|b| policy.priority > b.priority) {
                best = Some(policy);
            }
        }
        best.cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, pattern: &str, apply_to: ApplyTo, priority: i64) -> Policy {
        Policy::from_json(name, pattern, apply_to, r#"{"message-ttl":1000}"#, priority).unwrap()
    }

    #[test]
    fn the_highest_priority_match_applies() {
        let policies = Policies::default();
        policies.set(policy("low", "^orders", ApplyTo::Queues, 0));
        policies.set(policy("high", "^orders\\.eu", ApplyTo::All, 5));
        policies.set(policy("exchanges", "^orders", ApplyTo::Exchanges, 9));
        assert_eq!(policies.for_queue("orders.eu").unwrap().name, "high");
        assert_eq!(policies.for_queue("orders.us").unwrap().name, "low");
        assert_eq!(policies.for_queue("billing"), None);
        assert_eq!(
            policies.for_exchange("orders.us").unwrap().name,
            "exchanges"
        );
    }

    #[test]
    fn patterns_match_anywhere_unless_anchored() {
        let policies = Policies::default();
        policies.set(policy("p", "eu", ApplyTo::Queues, 0));
        assert!(policies.for_queue("orders.eu.1").is_some());
    }

    #[test]
    fn an_invalid_pattern_or_definition_is_refused() {
        let err = Policy::from_json("p", "(", ApplyTo::All, r#"{"message-ttl":1}"#, 0);
        assert!(
            matches!(&err, Err(PolicyError::Invalid(text)) if text.starts_with("pattern should be regular expression")),
            "{err:?}"
        );
        assert_eq!(
            Policy::from_json("p", "x", ApplyTo::All, "notjson", 0),
            Err(PolicyError::NotJson("badarg".to_string()))
        );
        assert_eq!(
            ApplyTo::parse("bogus"),
            Err(PolicyError::Invalid(
                "apply-to 'bogus' unrecognised; should be 'queues', 'exchanges' or 'all'"
                    .to_string()
            ))
        );
    }

    #[test]
    fn setting_the_same_policy_again_changes_nothing() {
        let policies = Policies::default();
        assert!(policies.set(policy("p", "x", ApplyTo::All, 0)));
        assert!(!policies.set(policy("p", "x", ApplyTo::All, 0)));
        assert!(policies.set(policy("p", "x", ApplyTo::All, 1)));
        assert!(policies.clear("p"));
        assert!(!policies.clear("p"));
    }
}
