//! What each command prints around the broker's answer, as rabbitmqctl does: the info line
//! before ("Listing queues for vhost / ..."), and after a success a table, a message, a hint,
//! or with `--formatter json` the JSON rabbitmqctl writes for it.

use std::io::{self, Write};

use rmqd_broker::admin::spec::{CommandSpec, Render};
use rmqd_broker::admin::{Response, node_name};
use serde_json::{Value, json};

use super::args::{Formatter, Invocation};
use super::table;

/// What a successful command prints.
enum Shape {
    /// The rows; JSON: an array of objects.
    Table,
    /// Nothing; JSON: `{"node": ..., "result": "ok"}`.
    Done,
    /// The broker's message, even with `-q`; JSON: `{"message": ...}`.
    Message,
    /// An info line after the banner (left out with `-q`); JSON: the line as `message`, with
    /// `node` and `"status": "ok"` (`add_user`).
    Hint(&'static str),
    /// An info line after the banner (left out with `-q`); JSON as [`Shape::Done`]
    /// (`import_definitions`).
    Then(&'static str),
    /// A single row; JSON: one object (`status`).
    Report,
    /// Nothing: `export_definitions` writes its document itself.
    Silent,
}

fn shape(command: &str) -> Shape {
    match command {
        "status" => Shape::Report,
        "delete_queue" | "authenticate_user" | "ping" => Shape::Message,
        "add_user" => Shape::Hint(
            "Done. Don't forget to grant the user permissions to some virtual hosts! See \
             'rmqd ctl help set_permissions' to learn more.",
        ),
        "import_definitions" => Shape::Then(
            "Successfully started definition import. This process is asynchronous and can \
             take some time.",
        ),
        "export_definitions" => Shape::Silent,
        command if command.starts_with("list_") => Shape::Table,
        _ => Shape::Done,
    }
}

/// The info line rabbitmqctl prints before running the command, if it prints one.
pub(super) fn banner(inv: &Invocation, command: &str) -> Option<String> {
    let arg = |n: usize| inv.args.get(n).map_or("", String::as_str);
    let vhost = inv.vhost();
    Some(match command {
        "list_queues" => format!(
            "Timeout: {:.1} seconds ...\nListing queues for vhost {vhost} ...",
            inv.timeout.unwrap_or(60.0)
        ),
        "list_exchanges" => format!("Listing exchanges for vhost {vhost} ..."),
        "list_bindings" => format!("Listing bindings for vhost {vhost}..."),
        "list_consumers" => format!("Listing consumers in vhost {vhost} ..."),
        "list_connections" => "Listing connections ...".into(),
        "list_channels" => "Listing channels ...".into(),
        "close_connection" => format!("Closing connection {}, reason: {}...", arg(0), arg(1)),
        "purge_queue" => format!("Purging queue '{}' in vhost '{vhost}' ...", arg(0)),
        "delete_queue" => {
            let conditions: Vec<&str> = [
                ("if-empty", "if queue is empty"),
                ("if-unused", "if queue is unused"),
            ]
            .into_iter()
            .filter(|(option, _)| inv.options.contains_key(*option))
            .map(|(_, text)| text)
            .collect();
            let mut line = format!("Deleting queue '{}' on vhost '{vhost}' ", arg(0));
            if !conditions.is_empty() {
                line.push_str(&conditions.join(" and "));
                line.push(' ');
            }
            line.push_str("...");
            line
        }
        "list_users" => "Listing users ...".into(),
        "add_user" => format!("Adding user \"{}\" ...", arg(0)),
        "delete_user" => format!("Deleting user \"{}\" ...", arg(0)),
        "change_password" => format!("Changing password for user \"{}\" ...", arg(0)),
        "authenticate_user" => format!("Authenticating user \"{}\" ...", arg(0)),
        "set_user_tags" => {
            let tags: Vec<&str> = inv.args.iter().skip(1).map(String::as_str).collect();
            format!(
                "Setting tags for user \"{}\" to [{}] ...",
                arg(0),
                tags.join(", ")
            )
        }
        "list_vhosts" => "Listing vhosts ...".into(),
        "add_vhost" => format!("Adding vhost \"{}\" ...", arg(0)),
        "delete_vhost" => format!("Deleting vhost \"{}\" ...", arg(0)),
        "set_permissions" => format!(
            "Setting permissions for user \"{}\" in vhost \"{vhost}\" ...",
            arg(0)
        ),
        "clear_permissions" => format!(
            "Clearing permissions for user \"{}\" in vhost \"{vhost}\" ...",
            arg(0)
        ),
        "list_permissions" => format!("Listing permissions for vhost \"{vhost}\" ..."),
        "set_policy" => format!(
            "Setting policy \"{}\" for pattern \"{}\" to \"{}\" with priority \"{}\" for vhost \"{vhost}\" ...",
            arg(0),
            arg(1),
            arg(2),
            inv.options.get("priority").map_or("0", String::as_str)
        ),
        "clear_policy" => format!("Clearing policy \"{}\" on vhost \"{vhost}\" ...", arg(0)),
        "list_policies" => format!("Listing policies for vhost \"{vhost}\" ..."),
        "list_user_permissions" => format!("Listing permissions for user \"{}\" ...", arg(0)),
        "export_definitions" if arg(0) != "-" => format!(
            "Exporting definitions in JSON to a file at \"{}\" ...",
            arg(0)
        ),
        "import_definitions" => match arg(0) {
            "" | "-" => "Importing definitions in JSON from standard input ...".into(),
            path => format!("Importing definitions in JSON from a file at \"{path}\" ..."),
        },
        "status" => format!("Status of node {} ...", node_name()),
        "ping" => format!(
            "Will ping {}. This only checks that it answers on its ctl socket.",
            node_name()
        ),
        _ => return None,
    })
}

/// Prints a successful answer.
pub(super) fn print_success(
    out: &mut impl Write,
    inv: &Invocation,
    spec: &CommandSpec,
    response: &Response,
) -> io::Result<()> {
    let json = inv.formatter == Formatter::Json;
    let done = || json!({"node": node_name(), "result": "ok"});
    match shape(spec.name) {
        Shape::Report if json => {
            let report: serde_json::Map<String, Value> = response
                .columns
                .iter()
                .cloned()
                .zip(response.rows.first().cloned().unwrap_or_default())
                .collect();
            writeln!(out, "{}", Value::Object(report))
        }
        // Without JSON a report is a table of one row.
        Shape::Table | Shape::Report => {
            let columns: Vec<(String, Render)> = response
                .columns
                .iter()
                .map(|name| {
                    let render = spec.column(name).map_or(Render::Plain, |c| c.render);
                    (name.clone(), render)
                })
                .collect();
            match json {
                true => table::print_json(out, &columns, &response.rows),
                false => table::print_table(out, &columns, &response.rows, inv.table_headers()),
            }
        }
        Shape::Done | Shape::Then(_) if json => writeln!(out, "{}", done()),
        Shape::Done | Shape::Silent => Ok(()),
        Shape::Message => {
            let message = response.message.as_deref().unwrap_or_default();
            match json {
                true => writeln!(out, "{}", json!({ "message": message })),
                false => writeln!(out, "{message}"),
            }
        }
        Shape::Hint(hint) if json => writeln!(
            out,
            "{}",
            json!({"message": hint, "node": node_name(), "status": "ok"})
        ),
        Shape::Hint(line) | Shape::Then(line) if !inv.quiet() => writeln!(out, "{line}"),
        Shape::Hint(_) | Shape::Then(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::parse;
    use super::*;

    fn banner_for(line: &str) -> Option<String> {
        let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
        let inv = parse(&argv).expect("parses");
        banner(&inv, inv.command.as_deref().expect("a command"))
    }

    #[test]
    fn banners_read_as_rabbitmqctls() {
        assert_eq!(
            banner_for("list_queues -p ctlh").as_deref(),
            Some("Timeout: 60.0 seconds ...\nListing queues for vhost ctlh ...")
        );
        assert_eq!(
            banner_for("list_queues -t 5").as_deref(),
            Some("Timeout: 5.0 seconds ...\nListing queues for vhost / ...")
        );
        assert_eq!(
            banner_for("list_bindings").as_deref(),
            Some("Listing bindings for vhost /...")
        );
        assert_eq!(
            banner_for("delete_queue q -e -u -p v").as_deref(),
            Some("Deleting queue 'q' on vhost 'v' if queue is empty and if queue is unused ...")
        );
        assert_eq!(
            banner_for("set_user_tags alice monitoring management").as_deref(),
            Some("Setting tags for user \"alice\" to [monitoring, management] ...")
        );
        assert_eq!(banner_for("export_definitions -"), None);
        assert_eq!(banner_for("await_startup"), None);
    }
}
