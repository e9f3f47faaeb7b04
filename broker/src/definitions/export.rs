//! The broker's users, vhosts, permissions, policies, exchanges, queues and bindings, and the
//! definitions it keeps without applying (parameters, topic permissions, vhost metadata), as a
//! definitions file RabbitMQ can import.
//!
//! What RabbitMQ leaves out, rmqd leaves out: exclusive queues (they die with their
//! connection) and the exchanges every vhost has (`""` and `amq.*`). One difference on
//! purpose: RabbitMQ 3.10 leaves out internal exchanges as well, yet exports the bindings to
//! them, so its file does not import back whole; rmqd writes them with `"internal": true`.
//! RabbitMQ does not sort its lists; rmqd sorts them by name so that two exports diff well.

use rmqd_codec::FieldValue;
use serde_json::{Map, Value};

use super::arguments::to_json;
use super::format::{
    BindingDef, Definitions, DestinationType, ExchangeDef, PermissionDef, PolicyDef, QueueDef,
    Tags, UserDef, VhostDef,
};
use super::topology::exchanges_and_bindings;
use crate::broker::Broker;

/// The RabbitMQ release whose format rmqd writes.
pub const RABBITMQ_FORMAT_VERSION: &str = "3.10.8";

pub fn export(broker: &Broker) -> Definitions {
    let mut vhosts = broker.vhosts();
    vhosts.sort_by(|a, b| a.name.cmp(&b.name));
    let vhost_names: Vec<String> = vhosts
        .iter()
        .map(|v| v.name.to_string_lossy().into_owned())
        .collect();

    let users = broker
        .users
        .list()
        .into_iter()
        .map(|u| UserDef {
            hashing_algorithm: Some(u.password_hash().algorithm().name().to_string()),
            limits: Some(Value::Object(Map::new())),
            password: None,
            password_hash: Some(u.password_hash().to_base64()),
            tags: Tags(u.tags().to_vec()),
            name: u.name,
        })
        .collect();
    // A permission in a vhost that is gone would make RabbitMQ refuse the whole file.
    let permissions = broker
        .users
        .list_permissions()
        .into_iter()
        .filter(|p| vhost_names.contains(&p.vhost))
        .map(|p| PermissionDef {
            configure: p.permissions.configure,
            read: p.permissions.read,
            user: p.user,
            vhost: p.vhost,
            write: p.permissions.write,
        })
        .collect();

    let mut queues = Vec::new();
    let mut exchanges = Vec::new();
    let mut bindings = Vec::new();
    for (vhost, vhost_name) in vhosts.iter().zip(&vhost_names) {
        let mut exclusive = Vec::new();
        for q in vhost.queues() {
            if q.exclusive_owner.is_some() {
                exclusive.push(q.name.clone());
                continue;
            }
            let queue_type = match q
                .arguments
                .get("x-queue-type")
                .and_then(FieldValue::as_bytes)
            {
                Some(kind) => String::from_utf8_lossy(kind).into_owned(),
                None => "classic".to_string(),
            };
            queues.push(QueueDef {
                arguments: to_json(&q.arguments),
                auto_delete: q.auto_delete,
                durable: q.durable,
                name: q.name.to_string_lossy().into_owned(),
                queue_type: Some(queue_type),
                vhost: vhost_name.clone(),
            });
        }
        let (vhost_exchanges, vhost_bindings) = exchanges_and_bindings(vhost);
        for x in vhost_exchanges {
            if x.name.is_empty() || x.name.as_bytes().starts_with(b"amq.") {
                continue;
            }
            exchanges.push(ExchangeDef {
                arguments: to_json(&x.arguments),
                auto_delete: x.auto_delete,
                durable: x.durable,
                internal: x.internal,
                name: x.name.to_string_lossy().into_owned(),
                kind: x.kind.to_string_lossy().into_owned(),
                vhost: vhost_name.clone(),
            });
        }
        for b in vhost_bindings {
            // Without its queue, such a binding would make the file fail to import.
            if b.destination_type == DestinationType::Queue && exclusive.contains(&b.destination) {
                continue;
            }
            bindings.push(BindingDef {
                arguments: to_json(&b.arguments),
                destination: b.destination.to_string_lossy().into_owned(),
                destination_type: b.destination_type,
                routing_key: b.routing_key.to_string_lossy().into_owned(),
                source: b.source.to_string_lossy().into_owned(),
                vhost: vhost_name.clone(),
            });
        }
    }
    let kept = broker.kept();
    let policies = vhosts
        .iter()
        .flat_map(|vhost| {
            let vhost_name = vhost.name.to_string_lossy().into_owned();
            vhost
                .policies()
                .into_iter()
                .map(move |p| PolicyDef::from_policy(&vhost_name, &p))
        })
        .collect();
    queues.sort_by(|a, b| (&a.vhost, &a.name).cmp(&(&b.vhost, &b.name)));
    exchanges.sort_by(|a, b| (&a.vhost, &a.name).cmp(&(&b.vhost, &b.name)));
    bindings.sort_by_cached_key(|b| {
        (
            b.vhost.clone(),
            b.source.clone(),
            b.destination_type,
            b.destination.clone(),
            b.routing_key.clone(),
            Value::Object(b.arguments.clone()).to_string(),
        )
    });

    Definitions {
        rabbit_version: Some(RABBITMQ_FORMAT_VERSION.to_string()),
        rabbitmq_version: Some(RABBITMQ_FORMAT_VERSION.to_string()),
        product_name: Some("rmqd".to_string()),
        product_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        users,
        vhosts: vhost_names
            .iter()
            .map(|name| {
                // A vhost not imported has RabbitMQ's empty limits and metadata.
                let kept_vhost = kept.vhosts.get(name).cloned().unwrap_or_default();
                VhostDef {
                    limits: match kept_vhost.limits {
                        Value::Null => Value::Array(Vec::new()),
                        limits => limits,
                    },
                    metadata: kept_vhost.metadata,
                    name: name.clone(),
                }
            })
            .collect(),
        permissions,
        topic_permissions: kept
            .topic_permissions
            .into_iter()
            .filter(|p| vhost_names.contains(&p.vhost) && broker.users.exists(&p.user))
            .collect(),
        parameters: kept
            .parameters
            .into_iter()
            .filter(|p| vhost_names.contains(&p.vhost))
            .collect(),
        global_parameters: kept.global_parameters,
        policies,
        queues,
        exchanges,
        bindings,
    }
}
