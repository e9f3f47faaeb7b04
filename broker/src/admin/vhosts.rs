//! `list_vhosts`, `add_vhost`, `delete_vhost`.

use serde_json::{Value, json};

use super::spec::{Column, CommandSpec, Render};
use super::{Call, Response, node_name};
use crate::broker::Broker;

const COLUMNS: &[Column] = &[
    Column::plain("name"),
    Column::rendered("tags", Render::List),
    Column::plain("description"),
    Column::plain("default_queue_type"),
    Column::rendered("cluster_state", Render::NodeStates),
    Column::plain("tracing"),
];

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::listing(
        "Access Control",
        "list_vhosts",
        "[--no-table-headers] [<column> ...]",
        "Lists virtual hosts",
        COLUMNS,
        &["name"],
        list_vhosts,
    ),
    CommandSpec::exact(
        "Virtual hosts",
        "add_vhost",
        "<vhost>",
        "Creates a virtual host",
        1,
        add_vhost,
    ),
    CommandSpec::exact(
        "Virtual hosts",
        "delete_vhost",
        "<vhost>",
        "Deletes a virtual host",
        1,
        delete_vhost,
    ),
];

fn list_vhosts(broker: &Broker, call: &Call<'_>) -> Response {
    let mut names: Vec<String> = broker
        .vhosts()
        .iter()
        .map(|v| v.name.to_string_lossy().into_owned())
        .collect();
    names.sort();
    // Vhost tags, descriptions and default queue types come only from imported definitions,
    // which keeps them for export; listings show RabbitMQ's empty forms.
    Response::table(&call.columns, &names, |name, column| match column {
        "name" => name.as_str().into(),
        "tags" => json!([]),
        "description" => "".into(),
        "default_queue_type" => "undefined".into(),
        "cluster_state" => json!({ node_name(): "running" }),
        "tracing" => false.into(),
        _ => Value::Null,
    })
}

/// Adding a vhost that exists changes nothing and is no error, as in RabbitMQ 3.10.
fn add_vhost(broker: &Broker, call: &Call<'_>) -> Response {
    broker.add_vhost(call.arg(0));
    Response::done()
}

fn delete_vhost(broker: &Broker, call: &Call<'_>) -> Response {
    let name = call.arg(0);
    if broker.delete_vhost(name) {
        return Response::done();
    }
    Response::no_vhost(name)
}

#[cfg(test)]
mod tests {
    use super::super::Failure;
    use super::super::testing::{broker, rows, run};

    #[test]
    fn vhosts_are_listed_by_name_with_the_columns_asked_for() {
        let broker = broker();
        assert!(run(&broker, "add_vhost", &["orders"]).ok);
        assert!(run(&broker, "add_vhost", &["orders"]).ok, "idempotent");
        assert_eq!(
            rows(&run(&broker, "list_vhosts", &[])),
            ["\"/\"", "\"orders\""]
        );
        assert_eq!(
            rows(&run(&broker, "list_vhosts", &["name", "tracing", "tags"])),
            ["\"/\" false []", "\"orders\" false []"]
        );
    }

    #[test]
    fn deleting_a_missing_vhost_fails_as_rabbitmqctl_does() {
        let response = run(&broker(), "delete_vhost", &["nope"]);
        assert_eq!(
            (
                response.failure,
                response.bare_error,
                response.error.as_deref()
            ),
            (
                Some(Failure::DataErr),
                true,
                Some("Virtual host 'nope' does not exist")
            )
        );
    }
}
