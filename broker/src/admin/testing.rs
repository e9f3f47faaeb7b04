//! What the admin unit tests share: a broker with RabbitMQ's defaults, and a way to run a
//! command on it.

use std::sync::Arc;
use std::time::Instant;

use rmqd_codec::{FieldTable, ShortStr};

use super::{Request, Response, execute};
use crate::broker::{Broker, BrokerConfig};
use crate::queue::Queue;
use crate::vhost::QueueSpec;

/// The vhost `/` and the user guest with full permissions there.
pub(super) fn broker() -> Arc<Broker> {
    let broker = Broker::new(BrokerConfig::default());
    broker.add_vhost("/");
    broker.users.add("guest", "guest");
    broker.users.grant("guest", "/");
    broker
}

/// Declares a queue in `/` as a client would.
pub(super) fn declare_queue(
    broker: &Broker,
    name: &'static str,
    durable: bool,
    arguments: FieldTable,
) -> Arc<Queue> {
    let vhost = broker.vhost(b"/").expect("vhost /");
    let spec = QueueSpec {
        name: &ShortStr::from_static(name),
        passive: false,
        durable,
        exclusive: false,
        auto_delete: false,
        arguments: &arguments,
    };
    let (queue, _) = vhost
        .declare_queue(&spec, 1, Instant::now())
        .expect("declared");
    queue
}

pub(super) fn run(broker: &Broker, command: &str, args: &[&str]) -> Response {
    execute(broker, &request(command, args))
}

/// As [`run`], with `-p vhost`.
pub(super) fn run_in(broker: &Broker, vhost: &str, command: &str, args: &[&str]) -> Response {
    let request = Request {
        vhost: Some(vhost.to_string()),
        ..request(command, args)
    };
    execute(broker, &request)
}

pub(super) fn request(command: &str, args: &[&str]) -> Request {
    Request {
        command: command.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        ..Request::default()
    }
}

/// The rows of a listing, each cell as JSON text, for compact assertions.
pub(super) fn rows(response: &Response) -> Vec<String> {
    assert!(response.ok, "{response:?}");
    response
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| cell.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// A small message, counted against the broker's memory as a published one is.
pub(super) fn message(broker: &Broker) -> Arc<crate::message::Message> {
    Arc::new(crate::message::Message::new(
        &rmqd_codec::ShortStr::default(),
        &rmqd_codec::ShortStr::default(),
        &rmqd_codec::BasicProperties::default(),
        bytes::Bytes::from_static(b"hello"),
        &broker.memory,
        &mut bytes::BytesMut::new(),
    ))
}
