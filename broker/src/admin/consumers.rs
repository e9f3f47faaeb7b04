//! `list_consumers`, read from the queues of the `-p` vhost.

use std::time::Instant;

use rmqd_codec::ShortStr;
use serde_json::{Value, json};

use super::spec::{Column, CommandSpec, Render};
use super::{Call, Response, pid};
use crate::broker::Broker;
use crate::queue::ConsumerListing;

const COLUMNS: &[Column] = &[
    Column::plain("queue_name"),
    Column::plain("channel_pid"),
    Column::plain("consumer_tag"),
    Column::plain("ack_required"),
    Column::plain("prefetch_count"),
    Column::plain("active"),
    Column::plain("activity_status"),
    Column::rendered("arguments", Render::FieldTable),
];

pub(super) const COMMANDS: &[CommandSpec] = &[CommandSpec::listing(
    "Monitoring, observability and health checks",
    "list_consumers",
    "[--vhost <vhost>] [--no-table-headers] [<column> ...]",
    "Lists all consumers for a vhost",
    COLUMNS,
    &[
        "queue_name",
        "channel_pid",
        "consumer_tag",
        "ack_required",
        "prefetch_count",
        "active",
        "arguments",
    ],
    list_consumers,
)];

fn list_consumers(broker: &Broker, call: &Call<'_>) -> Response {
    let mut consumers: Vec<(ShortStr, ConsumerListing)> = Vec::new();
    if let Some(vhost) = broker.vhost(call.vhost.as_bytes()) {
        let now = Instant::now();
        for queue in vhost.queues() {
            for consumer in queue.listing(now).consumers {
                consumers.push((queue.name.clone(), consumer));
            }
        }
    }
    consumers.sort_by(|a, b| (&a.0, &a.1.tag).cmp(&(&b.0, &b.1.tag)));
    // rabbitmqctl shows the columns in its own order, whatever order they were asked in.
    let mut columns = call.columns.clone();
    columns.sort_by_key(|c| COLUMNS.iter().position(|known| known.name == c.name));
    Response::table(&columns, &consumers, |(queue, c), column| match column {
        "queue_name" => queue.to_string_lossy().into(),
        "channel_pid" => pid::channel(broker, c.connection, c.channel).into(),
        "consumer_tag" => c.tag.to_string_lossy().into(),
        "ack_required" => c.ack_required.into(),
        "prefetch_count" => c.prefetch.into(),
        "active" => true.into(),
        // Without single active consumer, every consumer is up, exclusive ones too.
        "activity_status" => "up".into(),
        // Consumers' arguments are not kept (x-priority is not implemented).
        "arguments" => json!([]),
        _ => Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rmqd_codec::FieldTable;

    use super::super::testing::{broker, declare_queue, rows, run};
    use super::*;
    use crate::outbox::Outbox;
    use crate::queue::{Consumer, Credit};

    #[test]
    fn consumers_are_listed_in_rabbitmqctls_column_order() {
        let broker = broker();
        let queue = declare_queue(&broker, "jobs", false, FieldTable::new());
        let consumer = Consumer {
            tag: ShortStr::from_static("worker-1"),
            connection: 7,
            channel: 2,
            outbox: Outbox::new(),
            ack_required: true,
            exclusive: false,
            credit: Arc::new(Credit::new(5)),
            channel_credit: Arc::new(Credit::new(0)),
        };
        assert!(queue.add_consumer(consumer, Instant::now()).is_ok());
        let channel_pid = pid::channel(&broker, 7, 2);
        assert_eq!(
            rows(&run(&broker, "list_consumers", &[])),
            [format!(
                "\"jobs\" \"{channel_pid}\" \"worker-1\" true 5 true []"
            )]
        );
        assert_eq!(
            rows(&run(
                &broker,
                "list_consumers",
                &["prefetch_count", "consumer_tag"]
            )),
            ["\"worker-1\" 5"],
            "asked for in another order"
        );
    }
}
