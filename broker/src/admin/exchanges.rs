//! `list_exchanges`, `list_bindings`.

use rmqd_codec::{FieldTable, ShortStr};
use serde_json::Value;

use super::spec::{Column, CommandSpec, Render};
use super::{Call, Response, values};
use crate::broker::Broker;
use crate::vhost::{Destination, Vhost};

const EXCHANGE_COLUMNS: &[Column] = &[
    Column::plain("name"),
    Column::plain("type"),
    Column::plain("durable"),
    Column::plain("auto_delete"),
    Column::plain("internal"),
    Column::rendered("arguments", Render::FieldTable),
    Column::plain("policy"),
];

const BINDING_COLUMNS: &[Column] = &[
    Column::plain("source_name"),
    Column::plain("source_kind"),
    Column::plain("destination_name"),
    Column::plain("destination_kind"),
    Column::plain("routing_key"),
    Column::rendered("arguments", Render::FieldTable),
];

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::listing(
        "Monitoring, observability and health checks",
        "list_bindings",
        "[--vhost <vhost>] [--no-table-headers] [<column> ...]",
        "Lists all bindings on a vhost",
        BINDING_COLUMNS,
        &[
            "source_name",
            "source_kind",
            "destination_name",
            "destination_kind",
            "routing_key",
            "arguments",
        ],
        list_bindings,
    ),
    CommandSpec::listing(
        "Monitoring, observability and health checks",
        "list_exchanges",
        "[--vhost <vhost>] [--no-table-headers] [<column> ...]",
        "Lists exchanges",
        EXCHANGE_COLUMNS,
        &["name", "type"],
        list_exchanges,
    ),
];

struct ExchangeRow {
    name: ShortStr,
    kind: &'static str,
    durable: bool,
    auto_delete: bool,
    internal: bool,
    arguments: FieldTable,
    policy: String,
}

struct BindingRow {
    source: ShortStr,
    destination: ShortStr,
    destination_kind: &'static str,
    routing_key: ShortStr,
    arguments: FieldTable,
}

fn list_exchanges(broker: &Broker, call: &Call<'_>) -> Response {
    let mut rows = Vec::new();
    if let Some(vhost) = broker.vhost(call.vhost.as_bytes()) {
        vhost.for_each_exchange(|x| {
            rows.push(ExchangeRow {
                name: x.name.clone(),
                kind: x.kind.name(),
                durable: x.durable,
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: x.arguments.clone(),
                policy: String::new(),
            })
        });
        for row in &mut rows {
            if let Some(policy) = vhost.exchange_policy(&row.name.to_string_lossy()) {
                row.policy = policy.name.clone();
            }
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Response::table(&call.columns, &rows, |x, column| match column {
        "name" => x.name.to_string_lossy().into(),
        "type" => x.kind.into(),
        "durable" => x.durable.into(),
        "auto_delete" => x.auto_delete.into(),
        "internal" => x.internal.into(),
        "arguments" => values::field_table(&x.arguments),
        "policy" => x.policy.as_str().into(),
        _ => Value::Null,
    })
}

fn list_bindings(broker: &Broker, call: &Call<'_>) -> Response {
    let rows = match broker.vhost(call.vhost.as_bytes()) {
        Some(vhost) => bindings(&vhost),
        None => Vec::new(),
    };
    Response::table(&call.columns, &rows, |b, column| match column {
        "source_name" => b.source.to_string_lossy().into(),
        "source_kind" => "exchange".into(),
        "destination_name" => b.destination.to_string_lossy().into(),
        "destination_kind" => b.destination_kind.into(),
        "routing_key" => b.routing_key.to_string_lossy().into(),
        "arguments" => values::sorted_field_table(&b.arguments),
        _ => Value::Null,
    })
}

/// Every binding of the vhost, the default exchange's to each queue included, as RabbitMQ
/// lists them: by source, then destination and routing key.
fn bindings(vhost: &Vhost) -> Vec<BindingRow> {
    let mut rows: Vec<BindingRow> = vhost
        .queues()
        .iter()
        .map(|q| BindingRow {
            source: ShortStr::default(),
            destination: q.name.clone(),
            destination_kind: "queue",
            routing_key: q.name.clone(),
            arguments: FieldTable::new(),
        })
        .collect();
    vhost.for_each_exchange(|x| {
        for (routing_key, arguments, destination) in x.bindings.iter() {
            let (destination, destination_kind) = match destination {
                Destination::Queue(name) => (name.clone(), "queue"),
                Destination::Exchange(name) => (name.clone(), "exchange"),
            };
            rows.push(BindingRow {
                source: x.name.clone(),
                destination,
                destination_kind,
                routing_key: routing_key.clone(),
                arguments: arguments.clone(),
            });
        }
    });
    rows.sort_by(|a, b| {
        (&a.source, &a.destination, &a.routing_key).cmp(&(
            &b.source,
            &b.destination,
            &b.routing_key,
        ))
    });
    rows
}

#[cfg(test)]
mod tests {

    use super::super::testing::{broker, declare_queue, rows, run};
    use super::*;
    use crate::vhost::ExchangeSpec;

    #[test]
    fn exchanges_are_listed_with_the_standard_ones() {
        let broker = broker();
        let vhost = broker.vhost(b"/").expect("vhost");
        vhost
            .declare_exchange(&ExchangeSpec {
                name: &ShortStr::from_static("logs"),
                kind: &ShortStr::from_static("fanout"),
                passive: false,
                durable: false,
                auto_delete: false,
                internal: false,
                arguments: &FieldTable::new(),
            })
            .expect("declared");
        assert_eq!(
            rows(&run(&broker, "list_exchanges", &[])),
            [
                "\"\" \"direct\"",
                "\"amq.direct\" \"direct\"",
                "\"amq.fanout\" \"fanout\"",
                "\"amq.headers\" \"headers\"",
                "\"amq.match\" \"headers\"",
                "\"amq.topic\" \"topic\"",
                "\"logs\" \"fanout\"",
            ]
        );
    }

    #[test]
    fn bindings_include_the_default_exchanges_to_each_queue() {
        let broker = broker();
        let vhost = broker.vhost(b"/").expect("vhost");
        let q = declare_queue(&broker, "q", false, FieldTable::new())
            .name
            .clone();
        vhost
            .bind_queue(
                &q,
                &ShortStr::from_static("amq.topic"),
                &ShortStr::from_static("a.#"),
                &FieldTable::new(),
                1,
            )
            .expect("bound");
        assert_eq!(
            rows(&run(&broker, "list_bindings", &[])),
            [
                "\"\" \"exchange\" \"q\" \"queue\" \"q\" []",
                "\"amq.topic\" \"exchange\" \"q\" \"queue\" \"a.#\" []",
            ]
        );
    }
}
