//! The node itself: `status`, `await_startup`, `ping`, and the node name banners and pids use.

use std::sync::OnceLock;

use super::spec::{Column, CommandSpec};
use super::{Call, Response};
use crate::broker::Broker;

/// `rmqd@` and the short host name, as RabbitMQ's default node name is `rabbit@` and it.
pub fn node_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().split('.').next().unwrap_or_default().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        format!("rmqd@{host}")
    })
}

const STATUS_COLUMNS: &[Column] = &[
    Column::plain("product"),
    Column::plain("version"),
    Column::plain("node"),
    Column::plain("connections"),
    Column::plain("vhosts"),
];

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::exact(
        "Nodes",
        "await_startup",
        "",
        "Waits for rmqd to start and answer on its ctl socket",
        0,
        |_, _| Response::done(),
    ),
    CommandSpec::plain(
        "Monitoring, observability and health checks",
        "ping",
        "",
        "Checks that the node is up and answers on its ctl socket",
        (0, Some(0)),
        |_, _| Response::message("Ping succeeded"),
    ),
    CommandSpec {
        name: "status",
        group: "Monitoring, observability and health checks",
        usage: "",
        summary: "Displays status of a node",
        min_args: 0,
        max_args: Some(0),
        options: &[],
        columns: STATUS_COLUMNS,
        default_columns: &["product", "version", "node", "connections", "vhosts"],
        takes_columns: false,
        run: status,
    },
];

fn status(broker: &Broker, call: &Call<'_>) -> Response {
    Response::table(&call.columns, &[()], |_, column| match column {
        "product" => "rmqd".into(),
        "version" => env!("CARGO_PKG_VERSION").into(),
        "node" => node_name().into(),
        "connections" => broker.connection_count().into(),
        _ => broker.vhosts().len().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{broker, run};
    use serde_json::json;

    #[test]
    fn status_names_product_node_and_counts() {
        let response = run(&broker(), "status", &[]);
        assert_eq!(
            response.columns,
            ["product", "version", "node", "connections", "vhosts"]
        );
        assert_eq!(response.rows[0][0], json!("rmqd"));
        assert!(
            response.rows[0][2]
                .as_str()
                .is_some_and(|n| n.starts_with("rmqd@"))
        );
        assert_eq!(response.rows[0][3], json!(0));
        assert_eq!(response.rows[0][4], json!(1));
    }
}
