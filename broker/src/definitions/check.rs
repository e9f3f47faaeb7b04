//! The first phase of an import: everything that can be judged without changing the broker
//! (names, exchange types, password hashes, arguments, that every permission and binding
//! refers to something that will exist), converted to the broker's types. A file that fails
//! here changes nothing.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use rmqd_codec::{FieldTable, FieldValue, ShortStr};
use rmqd_routing::ExchangeKind;
use tracing::warn;

use super::arguments::to_field_table;
use super::error::DefinitionsError;
use super::format::{
    BindingDef, Definitions, DestinationType, ExchangeDef, PermissionDef, QueueDef, UserDef,
};
use crate::auth::{HashingAlgorithm, PasswordHash, Permissions};
use crate::broker::Broker;
use crate::error::{AmqpError, resource};
use crate::policy::Policy;
use crate::queue::QueueSettings;
use crate::vhost::STANDARD_EXCHANGES;

/// RabbitMQ 3.10 exports the bindings of internal exchanges but not the exchanges, so its
/// files can name exchanges they do not hold.
const INTERNAL_HINT: &str = " (RabbitMQ 3.10 does not export internal exchanges: add it to the \
                             file with \"internal\": true)";

pub(super) enum Password<'a> {
    Clear(&'a str),
    Hash(PasswordHash),
}

pub(super) struct CheckedUser<'a> {
    pub def: &'a UserDef,
    pub password: Password<'a>,
}

pub(super) struct CheckedExchange<'a> {
    pub def: &'a ExchangeDef,
    pub item: String,
    pub name: ShortStr,
    pub kind: ExchangeKind,
    pub arguments: FieldTable,
}

pub(super) struct CheckedQueue<'a> {
    pub def: &'a QueueDef,
    pub item: String,
    pub name: ShortStr,
    pub arguments: FieldTable,
}

pub(super) struct CheckedBinding<'a> {
    pub def: &'a BindingDef,
    pub item: String,
    pub source: ShortStr,
    pub destination: ShortStr,
    pub routing_key: ShortStr,
    pub arguments: FieldTable,
}

/// The definitions' users, policies, exchanges, queues and bindings, ready to apply.
pub(super) struct Checked<'a> {
    pub users: Vec<CheckedUser<'a>>,
    /// Compiled, with what the file says of each.
    pub permissions: Vec<(&'a PermissionDef, Permissions)>,
    /// With the vhost each is in.
    pub policies: Vec<(&'a str, Policy)>,
    pub exchanges: Vec<CheckedExchange<'a>>,
    pub queues: Vec<CheckedQueue<'a>>,
    pub bindings: Vec<CheckedBinding<'a>>,
}

impl<'a> Checked<'a> {
    pub(super) fn new(
        broker: &Broker,
        defs: &'a Definitions,
    ) -> Result<Checked<'a>, DefinitionsError> {
        let users = defs
            .users
            .iter()
            .map(|u| check_user(u, defs))
            .collect::<Result<Vec<_>, _>>()?;
        for vhost in &defs.vhosts {
            short_str(&format!("vhost '{}'", vhost.name), "name", &vhost.name)?;
        }
        let known = Known::new(broker, defs);
        let permissions = check_permissions(&known, defs)?;
        let policies = check_policies(&known, defs)?;
        let exchanges = check_exchanges(&known, defs)?;
        let queues = check_queues(&known, defs)?;
        let bindings = check_bindings(&known, defs, &exchanges, &queues)?;
        Ok(Checked {
            users,
            permissions,
            policies,
            exchanges,
            queues,
            bindings,
        })
    }
}

/// What exists before the import or will exist after it, for checking references.
struct Known<'a> {
    broker: &'a Broker,
    vhosts: HashSet<&'a str>,
    users: HashSet<&'a str>,
}

impl<'a> Known<'a> {
    fn new(broker: &'a Broker, defs: &'a Definitions) -> Known<'a> {
        Known {
            broker,
            vhosts: defs.vhosts.iter().map(|v| v.name.as_str()).collect(),
            users: defs.users.iter().map(|u| u.name.as_str()).collect(),
        }
    }

    fn vhost(&self, item: &str, vhost: &str) -> Result<(), DefinitionsError> {
        if self.vhosts.contains(vhost) || self.broker.vhost(vhost.as_bytes()).is_some() {
            return Ok(());
        }
        Err(DefinitionsError::NoSuchVhost {
            item: item.to_string(),
            vhost: vhost.to_string(),
        })
    }

    fn user(&self, item: &str, user: &str) -> Result<(), DefinitionsError> {
        if self.users.contains(user) || self.broker.users.exists(user) {
            return Ok(());
        }
        Err(DefinitionsError::NoSuchUser {
            item: item.to_string(),
            user: user.to_string(),
        })
    }
}

fn check_user<'a>(
    user: &'a UserDef,
    defs: &Definitions,
) -> Result<CheckedUser<'a>, DefinitionsError> {
    let item = format!("user '{}'", user.name);
    let password = match (&user.password, &user.password_hash) {
        (Some(_), Some(_)) => {
            // RabbitMQ refuses this too (both_password_and_password_hash_are_provided).
            return Err(DefinitionsError::invalid(
                &item,
                "has both a password and a password_hash",
            ));
        }
        (Some(password), None) => Password::Clear(password),
        (None, hash) => {
            let algorithm = match &user.hashing_algorithm {
                Some(name) => HashingAlgorithm::from_name(name).ok_or_else(|| {
                    DefinitionsError::UnknownHashingAlgorithm {
                        user: user.name.clone(),
                        algorithm: name.clone(),
                    }
                })?,
                None => default_algorithm(defs),
            };
            let hash = PasswordHash::from_base64(hash.as_deref().unwrap_or(""), algorithm)
                .map_err(|reason| {
                    DefinitionsError::invalid(&item, format!("invalid password_hash: {reason}"))
                })?;
            Password::Hash(hash)
        }
    };
    Ok(CheckedUser {
        def: user,
        password,
    })
}

/// The algorithm of hashes written without one, as RabbitMQ guesses it: exports from 3.0 to
/// 3.5 hashed with MD5, later ones name their algorithm, anything else gets the default.
fn default_algorithm(defs: &Definitions) -> HashingAlgorithm {
    let version = defs
        .rabbitmq_version
        .as_deref()
        .or(defs.rabbit_version.as_deref())
        .unwrap_or("");
    let md5_era = ["3.0.", "3.1.", "3.2.", "3.3.", "3.4.", "3.5."];
    if md5_era.iter().any(|prefix| version.starts_with(prefix)) {
        HashingAlgorithm::Md5
    } else {
        HashingAlgorithm::default()
    }
}

fn check_permissions<'a>(
    known: &Known<'_>,
    defs: &'a Definitions,
) -> Result<Vec<(&'a PermissionDef, Permissions)>, DefinitionsError> {
    let mut checked = Vec::new();
    for p in &defs.permissions {
        let item = permission_item(&p.user, &p.vhost);
        known.user(&item, &p.user)?;
        known.vhost(&item, &p.vhost)?;
        let permissions = Permissions::parse(&p.configure, &p.write, &p.read)
            .map_err(|err| DefinitionsError::invalid(&item, err.to_string()))?;
        checked.push((p, permissions));
    }
    Ok(checked)
}

fn check_policies<'a>(
    known: &Known<'_>,
    defs: &'a Definitions,
) -> Result<Vec<(&'a str, Policy)>, DefinitionsError> {
    let mut policies = Vec::new();
    for def in &defs.policies {
        let item = format!("policy '{}' in vhost '{}'", def.name, def.vhost);
        known.vhost(&item, &def.vhost)?;
        let policy = def
            .to_policy()
            .map_err(|err| DefinitionsError::invalid(&item, err.to_string()))?;
        policies.push((def.vhost.as_str(), policy));
    }
    Ok(policies)
}

fn check_exchanges<'a>(
    known: &Known<'_>,
    defs: &'a Definitions,
) -> Result<Vec<CheckedExchange<'a>>, DefinitionsError> {
    let mut exchanges = Vec::new();
    for def in &defs.exchanges {
        let item = resource("exchange", &def.name, &def.vhost);
        if def.name.is_empty() || def.name.starts_with("amq.") {
            // RabbitMQ's import skips these too: every vhost has its own.
            warn!("definitions: skipping {item}: its name is reserved");
            continue;
        }
        known.vhost(&item, &def.vhost)?;
        let kind = ExchangeKind::from_name(def.kind.as_bytes()).ok_or_else(|| {
            DefinitionsError::UnknownExchangeType {
                item: item.clone(),
                kind: def.kind.clone(),
            }
        })?;
        exchanges.push(CheckedExchange {
            def,
            name: short_str(&item, "name", &def.name)?,
            kind,
            arguments: arguments(&item, &def.arguments)?,
            item,
        });
    }
    Ok(exchanges)
}

fn check_queues<'a>(
    known: &Known<'_>,
    defs: &'a Definitions,
) -> Result<Vec<CheckedQueue<'a>>, DefinitionsError> {
    let mut queues = Vec::new();
    for def in &defs.queues {
        let item = resource("queue", &def.name, &def.vhost);
        if def.name.starts_with("amq.") {
            // As RabbitMQ's import does: such names are the server's to give.
            warn!("definitions: skipping {item}: names starting with 'amq.' are reserved");
            continue;
        }
        if def.name.is_empty() {
            return Err(DefinitionsError::invalid(&item, "a queue needs a name"));
        }
        known.vhost(&item, &def.vhost)?;
        let name = short_str(&item, "name", &def.name)?;
        let args = arguments(&item, &def.arguments)?;
        QueueSettings::from_arguments(&args, &def.name, &def.vhost)
            .map_err(|e| refused(&item, e))?;
        if let Some(kind) = args.get("x-queue-type").and_then(FieldValue::as_bytes)
            && kind != b"classic"
        {
            warn!(
                "definitions: {item} is a {} queue in RabbitMQ; rmqd declares it as a classic queue",
                String::from_utf8_lossy(kind)
            );
        }
        queues.push(CheckedQueue {
            def,
            item,
            name,
            arguments: args,
        });
    }
    Ok(queues)
}

fn check_bindings<'a>(
    known: &Known<'_>,
    defs: &'a Definitions,
    exchanges: &[CheckedExchange<'_>],
    queues: &[CheckedQueue<'_>],
) -> Result<Vec<CheckedBinding<'a>>, DefinitionsError> {
    let file_exchanges: HashSet<(&str, &str)> = exchanges
        .iter()
        .map(|x| (x.def.vhost.as_str(), x.def.name.as_str()))
        .collect();
    let file_queues: HashSet<(&str, &str)> = queues
        .iter()
        .map(|q| (q.def.vhost.as_str(), q.def.name.as_str()))
        .collect();
    // The broker's queues, listed once per vhost that bindings name.
    let mut broker_queues: HashMap<&str, HashSet<ShortStr>> = HashMap::new();
    let mut bindings = Vec::new();
    for def in &defs.bindings {
        let item = format!(
            "binding from exchange '{}' to {} '{}' with routing key '{}' in vhost '{}'",
            def.source,
            def.destination_type.name(),
            def.destination,
            def.routing_key,
            def.vhost
        );
        known.vhost(&item, &def.vhost)?;
        if def.source.is_empty() {
            return Err(DefinitionsError::invalid(
                &item,
                "the default exchange's bindings are implicit and cannot be declared",
            ));
        }
        let source = short_str(&item, "source", &def.source)?;
        let destination = short_str(&item, "destination", &def.destination)?;
        let existing = known.broker.vhost(def.vhost.as_bytes());
        let exchange_exists = |name: &str, short: &ShortStr| {
            STANDARD_EXCHANGES
                .iter()
                .any(|(standard, _)| *standard == name)
                || file_exchanges.contains(&(def.vhost.as_str(), name))
                || existing.as_ref().is_some_and(|v| v.exchange_exists(short))
        };
        if !exchange_exists(&def.source, &source) {
            return Err(DefinitionsError::MissingBindingEnd {
                item,
                missing: format!("source exchange '{}'", def.source),
                hint: INTERNAL_HINT,
            });
        }
        let (destination_exists, hint) = match def.destination_type {
            DestinationType::Queue => {
                let exists = file_queues.contains(&(def.vhost.as_str(), def.destination.as_str()))
                    || broker_queues
                        .entry(def.vhost.as_str())
                        .or_insert_with(|| {
                            existing.as_ref().map_or_else(HashSet::new, |v| {
                                v.queues().iter().map(|q| q.name.clone()).collect()
                            })
                        })
                        .contains(&destination);
                (exists, "")
            }
            DestinationType::Exchange => (
                exchange_exists(&def.destination, &destination),
                INTERNAL_HINT,
            ),
        };
        if !destination_exists {
            return Err(DefinitionsError::MissingBindingEnd {
                missing: format!(
                    "destination {} '{}'",
                    def.destination_type.name(),
                    def.destination
                ),
                item,
                hint,
            });
        }
        bindings.push(CheckedBinding {
            def,
            source,
            destination,
            routing_key: short_str(&item, "routing key", &def.routing_key)?,
            arguments: arguments(&item, &def.arguments)?,
            item,
        });
    }
    Ok(bindings)
}

pub(super) fn permission_item(user: &str, vhost: &str) -> String {
    format!("permissions of user '{user}' in vhost '{vhost}'")
}

/// The broker's refusal of an item, as a client declaring it would have seen it.
pub(super) fn refused(item: &str, err: AmqpError) -> DefinitionsError {
    DefinitionsError::invalid(item, err.reply_text())
}

fn short_str(item: &str, what: &str, value: &str) -> Result<ShortStr, DefinitionsError> {
    ShortStr::new(Bytes::copy_from_slice(value.as_bytes()))
        .map_err(|e| DefinitionsError::invalid(item, format!("{what}: {e}")))
}

fn arguments(
    item: &str,
    json: &serde_json::Map<String, serde_json::Value>,
) -> Result<FieldTable, DefinitionsError> {
    to_field_table(json).map_err(|reason| DefinitionsError::invalid(item, reason))
}
