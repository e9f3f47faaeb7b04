//! `set_policy`, `clear_policy`, `list_policies`.

use serde_json::Value;

use super::spec::{Column, CommandSpec, OptionSpec};
use super::{Call, Failure, Response};
use crate::broker::Broker;
use crate::policy::{ApplyTo, Policy};

const COLUMNS: &[Column] = &[
    Column::plain("vhost"),
    Column::plain("name"),
    Column::plain("pattern"),
    Column::plain("apply-to"),
    Column::plain("definition"),
    Column::plain("priority"),
];

const GROUP: &str = "Policies";

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::exact(
        GROUP,
        "clear_policy",
        "[--vhost <vhost>] <name>",
        "Clears (removes) a policy",
        1,
        clear_policy,
    ),
    CommandSpec {
        columns: COLUMNS,
        default_columns: &[
            "vhost",
            "name",
            "pattern",
            "apply-to",
            "definition",
            "priority",
        ],
        ..CommandSpec::exact(
            GROUP,
            "list_policies",
            "[--vhost <vhost>] [--no-table-headers]",
            "Lists all policies in a virtual host",
            0,
            list_policies,
        )
    },
    CommandSpec {
        options: &[
            OptionSpec {
                long: "priority",
                short: None,
                takes_value: true,
            },
            OptionSpec {
                long: "apply-to",
                short: None,
                takes_value: true,
            },
        ],
        ..CommandSpec::exact(
            GROUP,
            "set_policy",
            "[--vhost <vhost>] [--priority <priority>] [--apply-to <apply-to>] <name> <pattern> \
             <definition>",
            "Sets or updates a policy",
            3,
            set_policy,
        )
    },
];

fn set_policy(broker: &Broker, call: &Call<'_>) -> Response {
    let Some(vhost) = broker.vhost(call.vhost.as_bytes()) else {
        return Response::no_vhost(call.vhost);
    };
    let priority = match call.options.get("priority").map(|p| p.parse::<i64>()) {
        None => 0,
        Some(Ok(priority)) => priority,
        Some(Err(_)) => {
            return Response::failed(
                Failure::Usage,
                format!(
                    "invalid priority '{}': an integer is expected",
                    call.options["priority"]
                ),
            );
        }
    };
    let apply_to = call.options.get("apply-to").map_or("all", String::as_str);
    let policy = ApplyTo::parse(apply_to).and_then(|apply_to| {
        Policy::from_json(call.arg(0), call.arg(1), apply_to, call.arg(2), priority)
    });
    match policy {
        Ok(policy) => {
            vhost.set_policy(policy);
            Response::done()
        }
        Err(err) => Response::failed(Failure::Unavailable, err.to_string()),
    }
}

fn clear_policy(broker: &Broker, call: &Call<'_>) -> Response {
    let Some(vhost) = broker.vhost(call.vhost.as_bytes()) else {
        return Response::no_vhost(call.vhost);
    };
    if vhost.clear_policy(call.arg(0)) {
        Response::done()
    } else {
        Response::failed(Failure::Unavailable, "Parameter does not exist")
    }
}

fn list_policies(broker: &Broker, call: &Call<'_>) -> Response {
    let Some(vhost) = broker.vhost(call.vhost.as_bytes()) else {
        return Response::no_vhost(call.vhost);
    };
    let policies = vhost.policies();
    Response::table(&call.columns, &policies, |policy, column| match column {
        "vhost" => call.vhost.into(),
        "name" => policy.name.as_str().into(),
        "pattern" => policy.pattern.as_str().into(),
        "apply-to" => policy.apply_to.name().into(),
        "definition" => policy.definition_json().into(),
        "priority" => policy.priority.into(),
        _ => Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{broker, rows, run, run_in};
    use super::*;

    #[test]
    fn a_policy_is_set_listed_and_cleared() {
        let broker = broker();
        assert!(
            run(
                &broker,
                "set_policy",
                &["ttl", "^tmp\\.", r#"{"message-ttl":5000}"#]
            )
            .ok
        );
        assert_eq!(
            rows(&run(&broker, "list_policies", &[])),
            [r#""/" "ttl" "^tmp\\." "all" "{\"message-ttl\":5000}" 0"#]
        );
        assert!(run(&broker, "clear_policy", &["ttl"]).ok);
        assert!(rows(&run(&broker, "list_policies", &[])).is_empty());
        let again = run(&broker, "clear_policy", &["ttl"]);
        assert_eq!(again.error.as_deref(), Some("Parameter does not exist"));
        assert_eq!(again.failure, Some(Failure::Unavailable));
    }

    #[test]
    fn an_invalid_policy_is_refused_with_rabbitmqs_text() {
        let broker = broker();
        let refused = run(&broker, "set_policy", &["p", "^x", r#"{"foo":1}"#]);
        assert_eq!(
            refused.error.as_deref(),
            Some("Validation failed\n\n[{<<\"foo\">>,1}] are not recognised policy settings")
        );
        assert_eq!(refused.failure, Some(Failure::Unavailable));
        let elsewhere = run_in(&broker, "nowhere", "list_policies", &[]);
        assert_eq!(elsewhere.failure, Some(Failure::DataErr));
    }
}
