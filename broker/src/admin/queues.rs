//! `list_queues`, `purge_queue`, `delete_queue`.

use std::sync::Arc;
use std::time::Instant;

use rmqd_codec::{FieldValue, ShortStr};
use serde_json::Value;

use super::spec::{Column, CommandSpec, OptionSpec, Render};
use super::{Call, Failure, Response, pid, values};
use crate::broker::Broker;
use crate::queue::{Queue, QueueListing};
use crate::vhost::{Vhost, notify_orphans};

const COLUMNS: &[Column] = &[
    Column::plain("name"),
    Column::plain("type"),
    Column::plain("durable"),
    Column::plain("auto_delete"),
    Column::plain("exclusive"),
    Column::rendered("arguments", Render::FieldTable),
    Column::plain("owner_pid"),
    Column::plain("exclusive_consumer_tag"),
    Column::plain("messages"),
    Column::plain("messages_ready"),
    Column::plain("messages_unacknowledged"),
    Column::plain("consumers"),
    Column::plain("memory"),
    Column::plain("state"),
    Column::plain("policy"),
];

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        options: &[
            OptionSpec {
                long: "if-empty",
                short: Some('e'),
                takes_value: false,
            },
            OptionSpec {
                long: "if-unused",
                short: Some('u'),
                takes_value: false,
            },
        ],
        ..CommandSpec::exact(
            "Queues",
            "delete_queue",
            "<queue_name> [--if-empty|-e] [--if-unused|-u]",
            "Deletes a queue",
            1,
            delete_queue,
        )
    },
    CommandSpec {
        options: &[
            OptionSpec {
                long: "online",
                short: None,
                takes_value: false,
            },
            OptionSpec {
                long: "offline",
                short: None,
                takes_value: false,
            },
            OptionSpec {
                long: "local",
                short: None,
                takes_value: false,
            },
        ],
        ..CommandSpec::listing(
            "Monitoring, observability and health checks",
            "list_queues",
            "[--vhost <vhost>] [--online] [--offline] [--local] [--no-table-headers] [<column>, ...]",
            "Lists queues and their properties",
            COLUMNS,
            &["name", "messages"],
            list_queues,
        )
    },
    CommandSpec::exact(
        "Queues",
        "purge_queue",
        "<queue>",
        "Purges a queue (removes all messages in it)",
        1,
        purge_queue,
    ),
];

/// The named queue of the `-p` vhost, if both exist.
fn find(broker: &Broker, call: &Call<'_>) -> Option<(Arc<Vhost>, Arc<Queue>)> {
    let vhost = broker.vhost(call.vhost.as_bytes())?;
    let name = ShortStr::try_from(call.arg(0)).ok()?;
    let queue = vhost.find_queue(&name)?;
    Some((vhost, queue))
}

fn list_queues(broker: &Broker, call: &Call<'_>) -> Response {
    // Every queue lives on this one node: none is offline.
    let queues = match broker.vhost(call.vhost.as_bytes()) {
        Some(vhost) if !call.flag("offline") => vhost.queues(),
        _ => Vec::new(),
    };
    let now = Instant::now();
    let mut listed: Vec<(Arc<Queue>, QueueListing)> = queues
        .into_iter()
        .map(|q| {
            let listing = q.listing(now);
            (q, listing)
        })
        .collect();
    listed.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Response::table(&call.columns, &listed, |(q, listing), column| {
        let counts = listing.counts;
        match column {
            "name" => q.name.to_string_lossy().into(),
            "type" => match q.arguments.get("x-queue-type") {
                Some(FieldValue::LongStr(kind)) => String::from_utf8_lossy(kind).into(),
                _ => "classic".into(),
            },
            "durable" => q.durable.into(),
            "auto_delete" => q.auto_delete.into(),
            "exclusive" => q.exclusive_owner.is_some().into(),
            "arguments" => values::field_table(&q.arguments),
            "owner_pid" => q
                .exclusive_owner
                .map_or_else(String::new, |id| pid::connection(broker, id))
                .into(),
            "exclusive_consumer_tag" => listing
                .consumers
                .iter()
                .find(|c| c.exclusive)
                .map_or_else(String::new, |c| c.tag.to_string_lossy().into_owned())
                .into(),
            "messages" => (counts.ready + counts.unacked).into(),
            "messages_ready" => counts.ready.into(),
            "messages_unacknowledged" => counts.unacked.into(),
            "consumers" => counts.consumers.into(),
            "memory" => listing.memory.into(),
            "state" => "running".into(),
            "policy" => q.policy_name().unwrap_or_default().into(),
            _ => Value::Null,
        }
    })
}

fn purge_queue(broker: &Broker, call: &Call<'_>) -> Response {
    match find(broker, call) {
        Some((_, queue)) => {
            queue.purge();
            Response::done()
        }
        None => Response::failed(Failure::Unavailable, "not_found"),
    }
}

fn delete_queue(broker: &Broker, call: &Call<'_>) -> Response {
    let Some((vhost, queue)) = find(broker, call) else {
        return Response::failed(Failure::Usage, "Queue not found");
    };
    let (if_unused, if_empty) = (call.flag("if-unused"), call.flag("if-empty"));
    let now = Instant::now();
    if if_empty && !queue.is_empty(now) {
        return Response::failed(Failure::Usage, "Queue is not empty");
    }
    if if_unused && !queue.is_unused() {
        return Response::failed(Failure::Usage, "Queue is in use");
    }
    // An operator may delete an exclusive queue: act as its owner.
    let owner = queue.exclusive_owner.unwrap_or_default();
    match vhost.delete_queue(&queue.name, if_unused, if_empty, owner, now) {
        Ok((ready, orphans)) => {
            notify_orphans(orphans);
            Response::message(format!(
                "Queue was successfully deleted with {ready} ready messages"
            ))
        }
        // A client changed the queue between the checks above and the deletion.
        Err(err) => Response::failed(Failure::Usage, err.detail),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{broker, declare_queue, message, request, rows, run, run_in};
    use super::super::{Request, execute};
    use super::*;
    use crate::broker::Broker;
    use rmqd_codec::FieldTable;

    fn publish(broker: &Broker, queue: &'static str, n: usize) {
        let vhost = broker.vhost(b"/").expect("vhost /");
        let queue = vhost
            .find_queue(&ShortStr::from_static(queue))
            .expect("queue");
        for _ in 0..n {
            queue.publish(message(broker), None, Instant::now());
        }
    }

    #[test]
    fn queues_are_listed_by_name_with_default_or_chosen_columns() {
        let broker = broker();
        declare_queue(&broker, "b", true, FieldTable::new());
        let ttl: FieldTable = [(
            ShortStr::from_static("x-message-ttl"),
            FieldValue::I32(60000),
        )]
        .into_iter()
        .collect();
        declare_queue(&broker, "a", false, ttl);
        publish(&broker, "b", 3);
        assert_eq!(
            rows(&run(&broker, "list_queues", &[])),
            ["\"a\" 0", "\"b\" 3"]
        );
        assert_eq!(
            rows(&run(
                &broker,
                "list_queues",
                &["name", "durable", "arguments", "state"]
            )),
            [
                "\"a\" false [[\"x-message-ttl\",\"signedint\",60000]] \"running\"",
                "\"b\" true [] \"running\""
            ]
        );
    }

    #[test]
    fn listing_a_missing_vhost_or_offline_queues_is_empty() {
        let broker = broker();
        declare_queue(&broker, "q", false, FieldTable::new());
        assert!(rows(&run_in(&broker, "nope", "list_queues", &[])).is_empty());
        let offline = Request {
            options: [("offline".to_string(), "true".to_string())].into(),
            ..request("list_queues", &[])
        };
        assert!(rows(&execute(&broker, &offline)).is_empty());
    }

    #[test]
    fn purge_empties_the_queue_and_a_missing_one_is_not_found() {
        let broker = broker();
        declare_queue(&broker, "q", false, FieldTable::new());
        publish(&broker, "q", 2);
        assert!(run(&broker, "purge_queue", &["q"]).ok);
        assert_eq!(rows(&run(&broker, "list_queues", &[])), ["\"q\" 0"]);
        let missing = run(&broker, "purge_queue", &["nope"]);
        assert_eq!(
            (missing.failure, missing.error.as_deref()),
            (Some(Failure::Unavailable), Some("not_found"))
        );
    }

    #[test]
    fn delete_reports_the_ready_count_and_honours_if_empty() {
        let broker = broker();
        declare_queue(&broker, "q", true, FieldTable::new());
        publish(&broker, "q", 3);
        let if_empty = Request {
            options: [("if-empty".to_string(), "true".to_string())].into(),
            ..request("delete_queue", &["q"])
        };
        let refused = execute(&broker, &if_empty);
        assert_eq!(
            (refused.failure, refused.error.as_deref()),
            (Some(Failure::Usage), Some("Queue is not empty"))
        );
        assert_eq!(
            run(&broker, "delete_queue", &["q"]).message.as_deref(),
            Some("Queue was successfully deleted with 3 ready messages")
        );
        let missing = run(&broker, "delete_queue", &["q"]);
        assert_eq!(missing.error.as_deref(), Some("Queue not found"));
    }
}
