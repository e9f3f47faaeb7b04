//! Administration, as `rabbitmqctl` does it: commands by rabbitmqctl's names, answered with
//! rows to print. [`execute`] is the whole of it and does no I/O; [`socket`] carries requests
//! to it over a Unix socket only the broker's owner can open.

pub mod socket;

use serde::{Deserialize, Serialize};

use crate::auth::Permissions;
use crate::broker::Broker;

/// One command: `{"command": "add_vhost", "args": ["test"], "vhost": "/"}`, where `vhost` is
/// rabbitmqctl's `-p`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Request {
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
}

/// `{"ok": true, "columns": [...], "rows": [[...]]}` or `{"ok": false, "error": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    fn done() -> Response {
        Response {
            ok: true,
            ..Response::default()
        }
    }

    fn failed(error: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(error.into()),
            ..Response::default()
        }
    }

    fn table(columns: &[&str], rows: Vec<Vec<serde_json::Value>>) -> Response {
        Response {
            ok: true,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
            error: None,
        }
    }
}

/// Runs one command against the broker.
pub fn execute(broker: &Broker, request: &Request) -> Response {
    let args: Vec<&str> = request.args.iter().map(String::as_str).collect();
    let vhost = request.vhost.as_deref().unwrap_or("/");
    match (request.command.as_str(), args.as_slice()) {
        ("status" | "await_startup" | "ping", []) => Response::table(
            &["product", "version", "connections", "vhosts"],
            vec![vec![
                "rmqd".into(),
                env!("CARGO_PKG_VERSION").into(),
                broker.connection_count().into(),
                broker.vhosts().len().into(),
            ]],
        ),
        ("list_vhosts", []) => {
            let mut names: Vec<String> = broker
                .vhosts()
                .iter()
                .map(|v| v.name.to_string_lossy().into_owned())
                .collect();
            names.sort();
            Response::table(
                &["name"],
                names.into_iter().map(|n| vec![n.into()]).collect(),
            )
        }
        ("add_vhost", [name]) => {
            if broker.vhost(name.as_bytes()).is_some() {
                return Response::failed(format!("Virtual host '{name}' already exists"));
            }
            broker.add_vhost(name);
            Response::done()
        }
        ("delete_vhost", [name]) => {
            if broker.delete_vhost(name) {
                Response::done()
            } else {
                Response::failed(format!("Virtual host '{name}' does not exist"))
            }
        }
        ("set_permissions", [user, configure, write, read]) => {
            if broker.vhost(vhost.as_bytes()).is_none() {
                return Response::failed(format!("Virtual host '{vhost}' does not exist"));
            }
            let permissions = Permissions::new(configure, write, read);
            match broker.users.set_permissions(user, vhost, permissions) {
                Ok(()) => Response::done(),
                Err(err) => Response::failed(err.to_string()),
            }
        }
        (command, _) if KNOWN.contains(&command) => {
            Response::failed(format!("wrong number of arguments for {command}"))
        }
        (command, _) => Response::failed(format!("unknown command '{command}'")),
    }
}

const KNOWN: &[&str] = &[
    "status",
    "await_startup",
    "ping",
    "list_vhosts",
    "add_vhost",
    "delete_vhost",
    "set_permissions",
];
