//! `export_definitions` and `import_definitions`. As with rabbitmqctl, the file is read and
//! written by `rmqd ctl`, not by the broker: the JSON travels in the request and response.

use super::spec::{CommandSpec, OptionSpec};
use super::{Call, Failure, Response};
use crate::broker::Broker;
use crate::definitions::{self, Definitions, DefinitionsError};

const FORMAT: OptionSpec = OptionSpec {
    long: "format",
    short: None,
    takes_value: true,
};

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        options: &[FORMAT],
        ..CommandSpec::exact(
            "Definitions",
            "export_definitions",
            "<file_path | \"-\"> [--format <json>]",
            "Exports definitions in JSON",
            1,
            export_definitions,
        )
    },
    CommandSpec {
        options: &[
            FORMAT,
            // An import of what the broker already has changes nothing, so skipping it
            // changes nothing either.
            OptionSpec {
                long: "skip-if-unchanged",
                short: None,
                takes_value: false,
            },
        ],
        ..CommandSpec::plain(
            "Definitions",
            "import_definitions",
            "[<file_path | \"-\">] [--format <json>] [--skip-if-unchanged]",
            "Imports definitions in JSON",
            (0, Some(1)),
            import_definitions,
        )
    },
];

fn export_definitions(broker: &Broker, _: &Call<'_>) -> Response {
    // rabbitmqctl writes the definitions on one line.
    match serde_json::to_string(&definitions::export(broker)) {
        Ok(json) => Response::document(json),
        Err(err) => Response::failed(Failure::Software, err.to_string()),
    }
}

fn import_definitions(broker: &Broker, call: &Call<'_>) -> Response {
    let Some(text) = call.document else {
        return Response::failed(Failure::DataErr, "no definitions came with the request");
    };
    let imported = Definitions::from_json(text).and_then(|defs| definitions::import(broker, &defs));
    match imported {
        Ok(_) => Response::done(),
        Err(err @ DefinitionsError::Json { .. }) => Response::failed(
            Failure::DataErr,
            format!("Failed to deserialise input (format: JSON) (error: {err})"),
        ),
        Err(err) => Response::failed(Failure::Unavailable, err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{broker, request, run};
    use super::super::{Request, execute};
    use super::*;

    fn import(broker: &Broker, document: &str) -> Response {
        execute(
            broker,
            &Request {
                document: Some(document.to_string()),
                ..request("import_definitions", &[])
            },
        )
    }

    #[test]
    fn an_export_imports_into_another_broker() {
        let source = broker();
        source.add_vhost("orders");
        assert!(run(&source, "add_user", &["alice", "pw"]).ok);
        let exported = run(&source, "export_definitions", &["-"]);
        let document = exported.document.expect("a document");
        assert!(
            !document.contains('\n'),
            "one line, as rabbitmqctl writes it"
        );

        let target = broker();
        assert!(import(&target, &document).ok);
        assert!(target.vhost(b"orders").is_some());
        assert!(target.users.authenticate("alice", "pw").is_ok());
    }

    #[test]
    fn malformed_json_is_a_data_error_and_changes_nothing() {
        let broker = broker();
        let response = import(&broker, "{\"vhosts\": [{\"name\": \"x\"}], bad");
        assert_eq!(response.failure, Some(Failure::DataErr));
        assert!(
            response
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("Failed to deserialise input (format: JSON)")),
            "{response:?}"
        );
        assert!(broker.vhost(b"x").is_none());
    }
}
