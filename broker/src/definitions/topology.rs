//! One vhost's exchanges and bindings, read for export.

use rmqd_codec::{FieldTable, ShortStr};

use super::format::DestinationType;
use crate::vhost::{Destination, Vhost};

pub(super) struct ExchangeRow {
    pub name: ShortStr,
    pub kind: ShortStr,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

pub(super) struct BindingRow {
    pub source: ShortStr,
    pub destination: ShortStr,
    pub destination_type: DestinationType,
    pub routing_key: ShortStr,
    pub arguments: FieldTable,
}

/// The vhost's exchanges (standard ones included) and every binding between them and its
/// queues, durable or not.
pub(super) fn exchanges_and_bindings(vhost: &Vhost) -> (Vec<ExchangeRow>, Vec<BindingRow>) {
    let mut exchanges = Vec::new();
    let mut bindings = Vec::new();
    vhost.for_each_exchange(|x| {
        exchanges.push(ExchangeRow {
            name: x.name.clone(),
            kind: ShortStr::from_static(x.kind.name()),
            durable: x.durable,
            auto_delete: x.auto_delete,
            internal: x.internal,
            arguments: x.arguments.clone(),
        });
        for (routing_key, arguments, destination) in x.bindings.iter() {
            let (destination, destination_type) = match destination {
                Destination::Queue(name) => (name.clone(), DestinationType::Queue),
                Destination::Exchange(name) => (name.clone(), DestinationType::Exchange),
            };
            bindings.push(BindingRow {
                source: x.name.clone(),
                destination,
                destination_type,
                routing_key: routing_key.clone(),
                arguments: arguments.clone(),
            });
        }
    });
    (exchanges, bindings)
}
