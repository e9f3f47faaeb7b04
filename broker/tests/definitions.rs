//! Definitions through the crate's public API only, as the CLI uses it: load RabbitMQ's export
//! from a file, log in, see the queues, export again.

use std::path::Path;

use rmqd_broker::definitions::{self, Definitions, DefinitionsError};
use rmqd_broker::{Broker, BrokerConfig};
use rmqd_codec::FieldValue;

fn fixture_path() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rabbitmq-3.10.8-definitions.json"
    ))
}

#[test]
fn rabbitmq_export_loads_from_a_file_and_its_users_log_in() {
    let broker = Broker::new(BrokerConfig::default());
    let summary = definitions::load_file(&broker, fixture_path()).unwrap();
    assert_eq!(
        summary.to_string(),
        "4 users, 3 vhosts, 6 permissions, 1 policy, 8 exchanges, 7 queues, 10 bindings; kept but \
         not applied yet: 1 parameter, 1 global parameter, 1 topic permission"
    );
    assert!(broker.users.authenticate("alice", "alice-secret").is_ok());
    assert!(broker.users.authenticate("bob", "bøb-secret").is_ok());
    assert!(broker.users.authenticate("bob", "bob-secret").is_err());
    assert!(broker.users.may_access("bob", "orders"));
    assert!(!broker.users.may_access("bob", "/"));

    let analytics = broker.vhost(b"analytics").unwrap();
    let events = analytics
        .queues()
        .into_iter()
        .find(|q| q.name.as_bytes() == b"events")
        .unwrap();
    assert_eq!(
        events.arguments.get("x-max-length-bytes"),
        Some(&FieldValue::I64(1_048_576))
    );
    assert_eq!(
        events.arguments.get("x-overflow"),
        Some(&FieldValue::from("reject-publish"))
    );
}

#[test]
fn export_text_reads_back_as_the_same_definitions() {
    let broker = Broker::new(BrokerConfig::default());
    definitions::load_file(&broker, fixture_path()).unwrap();
    let exported = definitions::export(&broker);
    let text = exported.to_json_pretty();
    assert_eq!(Definitions::from_json(&text).unwrap(), exported);
    assert_eq!(exported.users.len(), 4);
    assert_eq!(exported.queues.len(), 7);
    assert!(text.contains("\"product_name\": \"rmqd\""));
}

#[test]
fn errors_name_what_is_wrong() {
    let broker = Broker::new(BrokerConfig::default());
    let err = Definitions::from_json("{\"vhosts\": [").unwrap_err();
    assert!(
        matches!(err, DefinitionsError::Json { line: 1, .. }),
        "{err:?}"
    );
    let defs = Definitions::from_json(
        r#"{"vhosts": [{"name": "/"}],
            "bindings": [{"source": "amq.topic", "vhost": "/", "destination": "gone",
                          "destination_type": "queue", "routing_key": "a.#"}]}"#,
    )
    .unwrap();
    let err = definitions::import(&broker, &defs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "binding from exchange 'amq.topic' to queue 'gone' with routing key 'a.#' in vhost '/': \
         destination queue 'gone' does not exist"
    );
    let defs = Definitions::from_json(
        r#"{"vhosts": [{"name": "/"}], "users": [{"name": "u", "password_hash": "", "tags": []}],
            "permissions": [{"user": "u", "vhost": "/", "configure": "(", "write": "", "read": ""}]}"#,
    )
    .unwrap();
    let err = definitions::import(&broker, &defs).unwrap_err().to_string();
    assert!(
        err.starts_with("permissions of user 'u' in vhost '/': invalid configure permission '('"),
        "{err}"
    );
    assert!(
        !broker.users.exists("u"),
        "a file that fails its check changes nothing"
    );
}

/// A file exported from RabbitMQ 3.10, imported into rmqd and exported again, holds the same
/// users (with their password hashes), vhosts, permissions, policies, parameters, exchanges,
/// queues and bindings: a topology moves from RabbitMQ to rmqd and back without loss. Only
/// the order of the lists may differ (RabbitMQ does not sort them; rmqd does).
#[test]
fn a_rabbitmq_export_round_trips_through_rmqd_unchanged() {
    let broker = Broker::new(BrokerConfig::default());
    definitions::load_file(&broker, fixture_path()).unwrap();
    let exported: serde_json::Value =
        serde_json::from_str(&definitions::export(&broker).to_json_pretty()).unwrap();
    let text = std::fs::read_to_string(fixture_path()).unwrap();
    // RabbitMQ 3.10 writes a vhost created without tags as `"tags": ""`, and one created
    // with an empty list as `[]`; both mean no tags, and rmqd writes `[]`.
    let text = text.replace(r#""tags":"""#, r#""tags":[]"#);
    let original: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sorted = |value: &serde_json::Value, key: &str| {
        let mut items: Vec<String> = value[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} is not a list"))
            .iter()
            .map(|item| item.to_string())
            .collect();
        items.sort();
        items
    };
    for key in [
        "users",
        "vhosts",
        "permissions",
        "topic_permissions",
        "parameters",
        "global_parameters",
        "policies",
        "queues",
        "exchanges",
        "bindings",
    ] {
        assert_eq!(sorted(&exported, key), sorted(&original, key), "{key}");
    }
    assert_eq!(exported["rabbitmq_version"], original["rabbitmq_version"]);
}
