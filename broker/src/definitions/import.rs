//! Applying definitions to a broker, in RabbitMQ's order: users, vhosts, permissions, then
//! policies, then what rmqd keeps but does not apply yet (topic permissions, global parameters,
//! parameters, vhost metadata and limits), then exchanges, queues and bindings.
//!
//! The file is checked whole first (`check`), so a bad file changes nothing. What only the
//! broker can judge (an existing queue with other arguments) stops the import where it is
//! found; what came before stays, as in RabbitMQ.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use rmqd_codec::ShortStr;
use tracing::{info, warn};

use super::check::{Checked, CheckedUser, Password, permission_item, refused};
use super::error::DefinitionsError;
use super::format::{Definitions, DestinationType};
use crate::broker::Broker;
use crate::connection::ConnectionId;
use crate::vhost::{ExchangeSpec, QueueSpec, Vhost};

/// Imported queues belong to no connection (they are never exclusive).
const NO_CONNECTION: ConnectionId = 0;

/// What an import applied, by kind of item; parameters, global parameters and topic
/// permissions are counted and kept but not applied yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub users: usize,
    pub vhosts: usize,
    pub permissions: usize,
    pub exchanges: usize,
    pub queues: usize,
    pub bindings: usize,
    pub policies: usize,
    pub parameters: usize,
    pub global_parameters: usize,
    pub topic_permissions: usize,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |n: usize, one: &str, many: &str| match n {
            1 => format!("1 {one}"),
            n => format!("{n} {many}"),
        };
        write!(
            f,
            "{}, {}, {}, {}, {}, {}, {}",
            count(self.users, "user", "users"),
            count(self.vhosts, "vhost", "vhosts"),
            count(self.permissions, "permission", "permissions"),
            count(self.policies, "policy", "policies"),
            count(self.exchanges, "exchange", "exchanges"),
            count(self.queues, "queue", "queues"),
            count(self.bindings, "binding", "bindings"),
        )?;
        let kept: Vec<String> = [
            (self.parameters, "parameter", "parameters"),
            (
                self.global_parameters,
                "global parameter",
                "global parameters",
            ),
            (
                self.topic_permissions,
                "topic permission",
                "topic permissions",
            ),
        ]
        .into_iter()
        .filter(|(n, ..)| *n > 0)
        .map(|(n, one, many)| count(n, one, many))
        .collect();
        if !kept.is_empty() {
            write!(f, "; kept but not applied yet: {}", kept.join(", "))?;
        }
        Ok(())
    }
}

/// Applies `defs` to the broker. Entities that already exist as the file describes them are
/// left alone, as a repeated declare leaves them.
pub fn import(broker: &Broker, defs: &Definitions) -> Result<ImportSummary, DefinitionsError> {
    let checked = Checked::new(broker, defs)?;
    let mut summary = ImportSummary::default();

    for user in &checked.users {
        apply_user(broker, user)?;
        summary.users += 1;
    }
    for vhost in &defs.vhosts {
        broker.add_vhost(&vhost.name);
        if !limits_are_empty(&vhost.limits) {
            warn!(
                "definitions: limits of vhost '{}' are kept and exported but not applied: rmqd has no vhost limits yet",
                vhost.name
            );
        }
        summary.vhosts += 1;
    }
    for (p, permissions) in &checked.permissions {
        broker
            .users
            .set_permissions(&p.user, &p.vhost, permissions.clone())
            .map_err(|e| {
                DefinitionsError::invalid(&permission_item(&p.user, &p.vhost), e.to_string())
            })?;
        summary.permissions += 1;
    }
    for (vhost, policy) in &checked.policies {
        if let Some(vhost) = broker.vhost(vhost.as_bytes()) {
            vhost.set_policy(policy.clone());
            summary.policies += 1;
        }
    }
    broker.change_kept(|kept| kept.merge(defs));
    summary.topic_permissions = not_applied(
        "topic permissions",
        defs.topic_permissions.iter().map(|p| {
            format!(
                "{} on exchange '{}' in vhost '{}'",
                p.user, p.exchange, p.vhost
            )
        }),
    );
    summary.global_parameters = not_applied(
        "global parameters",
        defs.global_parameters.iter().map(|p| p.name.clone()),
    );
    summary.parameters = not_applied(
        "parameters",
        defs.parameters
            .iter()
            .map(|p| format!("{} '{}' in vhost '{}'", p.component, p.name, p.vhost)),
    );

    for x in &checked.exchanges {
        let vhost = declared_vhost(broker, &x.def.vhost, &x.item)?;
        vhost
            .declare_exchange(&ExchangeSpec {
                name: &x.name,
                kind: &ShortStr::from_static(x.kind.name()),
                passive: false,
                durable: x.def.durable,
                auto_delete: x.def.auto_delete,
                internal: x.def.internal,
                arguments: &x.arguments,
            })
            .map_err(|e| refused(&x.item, e))?;
        summary.exchanges += 1;
    }
    let now = Instant::now();
    for q in &checked.queues {
        let vhost = declared_vhost(broker, &q.def.vhost, &q.item)?;
        let spec = QueueSpec {
            name: &q.name,
            passive: false,
            durable: q.def.durable,
            exclusive: false,
            auto_delete: q.def.auto_delete,
            arguments: &q.arguments,
        };
        vhost
            .declare_queue(&spec, NO_CONNECTION, now)
            .map_err(|e| refused(&q.item, e))?;
        summary.queues += 1;
    }
    for b in &checked.bindings {
        let vhost = declared_vhost(broker, &b.def.vhost, &b.item)?;
        match b.def.destination_type {
            DestinationType::Queue => vhost.bind_queue(
                &b.destination,
                &b.source,
                &b.routing_key,
                &b.arguments,
                NO_CONNECTION,
            ),
            DestinationType::Exchange => {
                vhost.bind_exchange(&b.destination, &b.source, &b.routing_key, &b.arguments)
            }
        }
        .map_err(|e| refused(&b.item, e))?;
        summary.bindings += 1;
    }
    info!("definitions imported: {summary}");
    Ok(summary)
}

fn apply_user(broker: &Broker, user: &CheckedUser<'_>) -> Result<(), DefinitionsError> {
    let name = &user.def.name;
    let item = format!("user '{name}'");
    match &user.password {
        Password::Clear(password) => broker.users.add(name, password),
        Password::Hash(hash) => broker.users.add_with_hash(name, hash.clone()),
    }
    broker
        .users
        .set_tags(name, user.def.tags.0.clone())
        .map_err(|e| DefinitionsError::invalid(&item, e.to_string()))?;
    if user
        .def
        .limits
        .as_ref()
        .is_some_and(|l| !limits_are_empty(l))
    {
        warn!("definitions: limits of user '{name}' are not applied: rmqd has no user limits yet");
    }
    Ok(())
}

/// Says, once per kind, what rmqd cannot apply yet; returns how many there were. They stay in
/// the `Definitions` the caller holds, not in the broker.
fn not_applied(kind: &str, items: impl Iterator<Item = String>) -> usize {
    let items: Vec<String> = items.collect();
    if !items.is_empty() {
        warn!(
            "definitions: {kind} are kept and exported but not applied, rmqd does not support them yet: {}",
            items.join(", ")
        );
    }
    items.len()
}

fn limits_are_empty(limits: &serde_json::Value) -> bool {
    match limits {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn declared_vhost(broker: &Broker, name: &str, item: &str) -> Result<Arc<Vhost>, DefinitionsError> {
    // Checked up front; only a vhost deleted while importing gets here.
    broker
        .vhost(name.as_bytes())
        .ok_or_else(|| DefinitionsError::NoSuchVhost {
            item: item.to_string(),
            vhost: name.to_string(),
        })
}
