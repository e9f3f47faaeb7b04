//! `list_connections`, `list_channels`, `close_connection`.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use serde_json::{Value, json};

use super::spec::{Column, CommandSpec, Render};
use super::{Call, Failure, Response, pid, values};
use crate::broker::Broker;
use crate::connection::ConnectionId;
use crate::connections::{ChannelCounts, ConnectionInfo, Handshake};

const CONNECTION_COLUMNS: &[Column] = &[
    Column::plain("auth_mechanism"),
    Column::plain("channel_max"),
    Column::plain("channels"),
    Column::rendered("client_properties", Render::FieldTable),
    Column::plain("connected_at"),
    Column::plain("frame_max"),
    Column::rendered("host", Render::Address),
    Column::plain("name"),
    Column::rendered("peer_host", Render::Address),
    Column::plain("peer_port"),
    Column::plain("pid"),
    Column::plain("port"),
    Column::rendered("protocol", Render::Tuple),
    Column::plain("ssl"),
    Column::plain("state"),
    Column::plain("timeout"),
    Column::plain("user"),
    Column::plain("vhost"),
];

const CHANNEL_COLUMNS: &[Column] = &[
    Column::plain("confirm"),
    Column::plain("connection"),
    Column::plain("consumer_count"),
    Column::plain("global_prefetch_count"),
    Column::plain("messages_unacknowledged"),
    Column::plain("name"),
    Column::plain("number"),
    Column::plain("pid"),
    Column::plain("prefetch_count"),
    Column::plain("transactional"),
    Column::plain("user"),
    Column::plain("vhost"),
];

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::exact(
        "Operations",
        "close_connection",
        "<connection pid> <explanation>",
        "Instructs the broker to close the connection associated with the pid",
        2,
        close_connection,
    ),
    CommandSpec::listing(
        "Monitoring, observability and health checks",
        "list_channels",
        "[--no-table-headers] [<column> ...]",
        "Lists all channels in the node",
        CHANNEL_COLUMNS,
        &["pid", "user", "consumer_count", "messages_unacknowledged"],
        list_channels,
    ),
    CommandSpec::listing(
        "Monitoring, observability and health checks",
        "list_connections",
        "[--no-table-headers] [<column> ...]",
        "Lists AMQP 0.9.1 connections for the node",
        CONNECTION_COLUMNS,
        &["user", "peer_host", "peer_port", "state"],
        list_connections,
    ),
];

/// A connection as listed: what the registry holds, read once.
struct Listed {
    id: ConnectionId,
    info: Arc<ConnectionInfo>,
    handshake: Handshake,
}

/// Every connection, whatever its vhost: like rabbitmqctl, these listings ignore `-p`.
fn connections(broker: &Broker) -> Vec<Listed> {
    broker
        .connections
        .list()
        .into_iter()
        .map(|(id, info)| Listed {
            id,
            handshake: info.handshake(),
            info,
        })
        .collect()
}

/// RabbitMQ's name for a connection: `127.0.0.1:46216 -> 127.0.0.1:5672`.
fn name(info: &ConnectionInfo) -> String {
    format!("{} -> {}", info.peer, info.local)
}

fn vhost(handshake: &Handshake) -> Value {
    handshake
        .vhost
        .as_ref()
        .map_or(Value::Null, |v| v.to_string_lossy().into())
}

fn list_connections(broker: &Broker, call: &Call<'_>) -> Response {
    let listed = connections(broker);
    Response::table(&call.columns, &listed, |c, column| {
        let (info, h) = (&c.info, &c.handshake);
        match column {
            "auth_mechanism" => h.auth_mechanism.as_str().into(),
            "channel_max" => h.channel_max.into(),
            "channels" => info.channel_count().into(),
            "client_properties" => values::field_table(&h.client_properties),
            "connected_at" => info
                .connected_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
                .into(),
            "frame_max" => h.frame_max.into(),
            "host" => values::address(info.local.ip()),
            "name" => name(info).into(),
            "peer_host" => values::address(info.peer.ip()),
            "peer_port" => info.peer.port().into(),
            "pid" => pid::connection(broker, c.id).into(),
            "port" => info.local.port().into(),
            "protocol" => json!([0, 9, 1]),
            "ssl" => false.into(),
            "state" => info.state().name().into(),
            "timeout" => h.heartbeat.into(),
            "user" => h.user.as_str().into(),
            "vhost" => vhost(h),
            _ => Value::Null,
        }
    })
}

fn list_channels(broker: &Broker, call: &Call<'_>) -> Response {
    let mut channels: Vec<(&Listed, u16, ChannelCounts)> = Vec::new();
    let listed = connections(broker);
    for c in &listed {
        for (number, counts) in c.info.channels() {
            channels.push((c, number, counts));
        }
    }
    Response::table(
        &call.columns,
        &channels,
        |(c, number, counts), column| match column {
            "confirm" => counts.confirm.into(),
            "connection" => pid::connection(broker, c.id).into(),
            "consumer_count" => counts.consumers.into(),
            "global_prefetch_count" => counts.global_prefetch.into(),
            "messages_unacknowledged" => counts.unacked.into(),
            "name" => format!("{} ({number})", name(&c.info)).into(),
            "number" => (*number).into(),
            "pid" => pid::channel(broker, c.id, *number).into(),
            "prefetch_count" => counts.prefetch.into(),
            "transactional" => counts.transactional.into(),
            "user" => c.handshake.user.as_str().into(),
            "vhost" => vhost(&c.handshake),
            _ => Value::Null,
        },
    )
}

/// Closes the connection with 320 CONNECTION_FORCED and the explanation as the text's
/// detail. A pid that names no live connection is no error, as in RabbitMQ.
fn close_connection(broker: &Broker, call: &Call<'_>) -> Response {
    let text = call.arg(0);
    match pid::parse_connection(broker, text) {
        Err(_) => Response::failed(
            Failure::Unavailable,
            format!("Error:\n{{:invalid_pid_syntax, \"{text}\"}}"),
        ),
        Ok(target) => {
            if let Some(target) = target {
                broker
                    .connections
                    .force_close(call.arg(1), |id, _| id == target);
            }
            Response::done()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use rmqd_codec::ShortStr;

    use super::super::testing::{broker, rows, run};
    use super::*;
    use crate::connections::{ChannelStats, ConnectionState};
    use crate::outbox::{Event, Outbox};

    fn connect(broker: &Broker, port: u16) -> (ConnectionId, Arc<Outbox>, Arc<ConnectionInfo>) {
        let outbox = Outbox::new();
        let peer = format!("127.0.0.1:{port}").parse().expect("address");
        let local = "127.0.0.1:5672".parse().expect("address");
        let (id, info) = broker
            .connections
            .register(Arc::clone(&outbox), peer, local);
        info.update_handshake(|h| {
            h.user = "guest".into();
            h.vhost = Some(ShortStr::from_static("/"));
        });
        info.set_state(ConnectionState::Running);
        (id, outbox, info)
    }

    #[test]
    fn connections_and_their_channels_are_listed() {
        let broker = broker();
        let (id, _outbox, info) = connect(&broker, 40000);
        let stats = Arc::new(ChannelStats::default());
        stats.store(ChannelCounts {
            consumers: 1,
            unacked: 3,
            prefetch: 10,
            ..ChannelCounts::default()
        });
        info.channel_opened(1, stats);
        assert_eq!(
            rows(&run(&broker, "list_connections", &[])),
            ["\"guest\" [127,0,0,1] 40000 \"running\""]
        );
        let conn_pid = pid::connection(&broker, id);
        assert_eq!(
            rows(&run(
                &broker,
                "list_connections",
                &["name", "pid", "channels", "vhost"]
            )),
            [format!(
                "\"127.0.0.1:40000 -> 127.0.0.1:5672\" \"{conn_pid}\" 1 \"/\""
            )]
        );
        let channel_pid = pid::channel(&broker, id, 1);
        assert_eq!(
            rows(&run(&broker, "list_channels", &[])),
            [format!("\"{channel_pid}\" \"guest\" 1 3")]
        );
        assert_eq!(
            rows(&run(
                &broker,
                "list_channels",
                &["name", "connection", "prefetch_count"]
            )),
            [format!(
                "\"127.0.0.1:40000 -> 127.0.0.1:5672 (1)\" \"{conn_pid}\" 10"
            )]
        );
    }

    #[test]
    fn close_connection_closes_only_the_named_connection() {
        let broker = broker();
        let (id, named, _) = connect(&broker, 40001);
        let (_, other, _) = connect(&broker, 40002);
        let pid = pid::connection(&broker, id);
        assert!(run(&broker, "close_connection", &[&pid, "go away"]).ok);
        let mut events = VecDeque::new();
        named.drain(&mut events);
        assert!(matches!(
            events.pop_front(),
            Some(Event::ForceClose { code: 320, text }) if text == "CONNECTION_FORCED - go away"
        ));
        other.drain(&mut events);
        assert!(events.is_empty());
    }

    #[test]
    fn close_connection_refuses_what_is_no_pid_and_ignores_unknown_ones() {
        let broker = broker();
        let response = run(&broker, "close_connection", &["garbage", "x"]);
        assert_eq!(
            (response.failure, response.error.as_deref()),
            (
                Some(Failure::Unavailable),
                Some("Error:\n{:invalid_pid_syntax, \"garbage\"}")
            )
        );
        let gone = pid::connection(&broker, 999);
        assert!(run(&broker, "close_connection", &[&gone, "x"]).ok);
    }
}
