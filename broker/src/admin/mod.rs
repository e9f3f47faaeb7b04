//! Administration, as `rabbitmqctl` does it: commands by rabbitmqctl's names, answered with
//! rows to print, a message, or a document. [`execute`] is the whole of it and does no I/O;
//! [`socket`] carries requests to it over a Unix socket only the broker's owner can open.
//!
//! Each command is data in [`spec`] (name, usage, arguments, options, columns) plus a function
//! in the file of its concept: `node`, `vhosts`, `users`, `permissions`, `queues`,
//! `exchanges`, `connections`, `consumers`, `definitions`, `policies`. `rmqd ctl` reads the same specs to
//! print help and check arguments before it reaches the broker.

mod connections;
mod consumers;
mod definitions;
mod exchanges;
mod node;
mod permissions;
mod pid;
mod policies;
mod queues;
pub mod socket;
pub mod spec;
mod users;
mod values;
mod vhosts;

#[cfg(test)]
mod testing;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::broker::Broker;
pub use node::node_name;
use spec::{Column, CommandSpec};

/// One command: `{"command": "add_vhost", "args": ["test"], "vhost": "/"}`, where `vhost` is
/// rabbitmqctl's `-p`, `options` the command's own options (`{"if-empty": "true"}`) and
/// `document` what `import_definitions` imports.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Request {
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

/// `{"ok": true}`, with `columns` and `rows` for a listing (cells as rabbitmqctl's
/// `--formatter json` prints them), a `message` to print, or a `document`
/// (`export_definitions`); or `{"ok": false, "error": "...", "failure": "no_user"}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// rabbitmqctl prints most errors under an `Error:` line, a few (a missing vhost) without.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bare_error: bool,
}

/// Why a command failed, as the exit code rabbitmqctl gives it (sysexits.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// Wrong arguments; also rabbitmqctl's code for a queue that cannot be deleted.
    Usage,
    DataErr,
    NoUser,
    Unavailable,
    Software,
}

impl Failure {
    pub fn exit_code(self) -> u8 {
        match self {
            Failure::Usage => 64,
            Failure::DataErr => 65,
            Failure::NoUser => 67,
            Failure::Unavailable => 69,
            Failure::Software => 70,
        }
    }
}

impl Response {
    fn done() -> Response {
        Response {
            ok: true,
            ..Response::default()
        }
    }

    fn message(text: impl Into<String>) -> Response {
        Response {
            ok: true,
            message: Some(text.into()),
            ..Response::default()
        }
    }

    fn document(text: String) -> Response {
        Response {
            ok: true,
            document: Some(text),
            ..Response::default()
        }
    }

    fn failed(failure: Failure, error: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(error.into()),
            failure: Some(failure),
            ..Response::default()
        }
    }

    /// A `-p` vhost that is not there, as most commands report it.
    fn no_vhost(name: &str) -> Response {
        Response::failed_bare(
            Failure::DataErr,
            format!("Virtual host '{name}' does not exist"),
        )
    }

    /// An error rabbitmqctl prints without its `Error:` line.
    fn failed_bare(failure: Failure, error: impl Into<String>) -> Response {
        Response {
            bare_error: true,
            ..Response::failed(failure, error)
        }
    }

    /// A listing: one row per item, with the cells `cell` gives for the chosen columns.
    fn table<T>(columns: &[&Column], items: &[T], cell: impl Fn(&T, &str) -> Value) -> Response {
        Response {
            ok: true,
            columns: columns.iter().map(|c| c.name.to_string()).collect(),
            rows: items
                .iter()
                .map(|item| columns.iter().map(|c| cell(item, c.name)).collect())
                .collect(),
            ..Response::default()
        }
    }
}

/// A checked request, as a command's function gets it.
pub(crate) struct Call<'a> {
    pub args: &'a [String],
    /// `-p`, `/` when not given.
    pub vhost: &'a str,
    pub options: &'a BTreeMap<String, String>,
    pub document: Option<&'a str>,
    /// For a table: the columns asked for, else the command's default ones.
    pub columns: Vec<&'static Column>,
}

impl Call<'_> {
    pub fn flag(&self, name: &str) -> bool {
        self.options.contains_key(name)
    }

    /// The `n`th argument; the spec's argument count was checked before the command ran.
    pub fn arg(&self, n: usize) -> &str {
        self.args.get(n).map_or("", String::as_str)
    }
}

/// Runs one command against the broker.
pub fn execute(broker: &Broker, request: &Request) -> Response {
    let Some(command) = spec::find(&request.command) else {
        return Response::failed(
            Failure::Usage,
            format!("Command '{}' not found.", request.command),
        );
    };
    match checked(command, request) {
        Ok(call) => (command.run)(broker, &call),
        Err(err) => Response::failed(Failure::Usage, err.to_string()),
    }
}

fn checked<'a>(
    command: &'static CommandSpec,
    request: &'a Request,
) -> Result<Call<'a>, spec::UsageError> {
    for name in request.options.keys() {
        if command.option(name).is_none() {
            return Err(spec::UsageError::InvalidOption(format!("--{name}")));
        }
    }
    let columns = command.check(&request.args)?;
    Ok(Call {
        args: &request.args,
        vhost: request.vhost.as_deref().unwrap_or("/"),
        options: &request.options,
        document: request.document.as_deref(),
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::testing::{broker, run};
    use super::*;

    #[test]
    fn unknown_command_is_a_usage_error() {
        let response = run(&broker(), "frobnicate", &[]);
        assert_eq!(response.failure, Some(Failure::Usage));
        assert_eq!(
            response.error.as_deref(),
            Some("Command 'frobnicate' not found.")
        );
    }

    #[test]
    fn wrong_argument_counts_are_refused_before_running() {
        let broker = broker();
        let response = run(&broker, "add_vhost", &[]);
        assert_eq!(
            (response.failure, response.error.as_deref()),
            (Some(Failure::Usage), Some("not enough arguments."))
        );
        broker.add_vhost("a");
        let response = run(&broker, "delete_vhost", &["a", "b"]);
        assert_eq!(response.error.as_deref(), Some("too many arguments."));
        assert!(broker.vhost(b"a").is_some(), "the command did not run");
    }

    #[test]
    fn options_a_command_does_not_have_are_refused() {
        let request = Request {
            command: "purge_queue".into(),
            args: vec!["q".into()],
            options: [("if-empty".to_string(), "true".to_string())].into(),
            ..Request::default()
        };
        let response = execute(&broker(), &request);
        assert_eq!(
            response.error.as_deref(),
            Some("Invalid options for this command:\n--if-empty : ")
        );
    }

    #[test]
    fn a_done_response_is_just_ok_on_the_wire() {
        let response = run(&broker(), "add_vhost", &["x"]);
        assert_eq!(
            serde_json::to_string(&response).expect("json"),
            "{\"ok\":true}"
        );
    }
}
