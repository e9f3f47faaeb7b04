//! Definitions against a real RabbitMQ 3.10.8 export, and against what goes wrong in files.
//!
//! The fixture was made on a private RabbitMQ 3.10.8 node: users alice (`alice-secret`,
//! administrator + monitoring), bob (`bøb-secret`, management), carol (no password,
//! policymaker) and guest; vhosts `/`, `orders` (with description and tags) and `analytics`
//! (with limits); permissions, a topic permission, a policy, a global parameter; exchanges of
//! each type (one transient, one auto-delete, one with an alternate exchange); queues with
//! x-arguments (one transient); queue and exchange-to-exchange bindings, some with arguments.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rmqd_codec::{FieldTable, FieldValue, ShortStr};

use super::*;
use crate::auth::{HashingAlgorithm, PasswordHash};
use crate::broker::BrokerConfig;
use crate::vhost::{QueueSpec, Vhost};

const FIXTURE: &str = include_str!("../../tests/fixtures/rabbitmq-3.10.8-definitions.json");

fn fixture() -> Definitions {
    Definitions::from_json(FIXTURE).unwrap()
}

fn s(v: &str) -> ShortStr {
    ShortStr::truncating(v)
}

fn imported() -> Arc<Broker> {
    let broker = Broker::new(BrokerConfig::default());
    import(&broker, &fixture()).unwrap();
    broker
}

fn vhost(broker: &Broker, name: &str) -> Arc<Vhost> {
    broker
        .vhost(name.as_bytes())
        .unwrap_or_else(|| panic!("no vhost {name}"))
}

fn login(broker: &Broker, user: &str, password: &str) -> bool {
    let response = Bytes::from(format!("\0{user}\0{password}"));
    broker
        .users
        .login(b"PLAIN", &response, Ipv4Addr::LOCALHOST.into())
        .is_ok()
}

fn routed(vhost: &Vhost, exchange: &str, key: &str, headers: Option<&FieldTable>) -> Vec<String> {
    let mut out = Vec::new();
    vhost
        .route(&s(exchange), &s(key), headers, &mut out)
        .unwrap();
    let mut names: Vec<String> = out.iter().map(|q| q.name.to_string()).collect();
    names.sort();
    names
}

fn import_err(json: &str) -> String {
    let broker = Broker::new(BrokerConfig::default());
    let defs = Definitions::from_json(json).unwrap();
    import(&broker, &defs).unwrap_err().to_string()
}

// ---- reading ----

#[test]
fn rabbitmq_3_10_export_parses() {
    let defs = fixture();
    assert_eq!(defs.rabbitmq_version.as_deref(), Some("3.10.8"));
    assert_eq!(defs.users.len(), 4);
    assert_eq!(defs.vhosts.len(), 3);
    assert_eq!(defs.permissions.len(), 6);
    assert_eq!(defs.topic_permissions.len(), 1);
    assert_eq!(defs.policies.len(), 1);
    assert_eq!(defs.parameters.len(), 1);
    assert_eq!(defs.global_parameters.len(), 1);
    assert_eq!(defs.exchanges.len(), 8);
    assert_eq!(defs.queues.len(), 7);
    assert_eq!(defs.bindings.len(), 10);
    let alice = defs.users.iter().find(|u| u.name == "alice").unwrap();
    assert_eq!(alice.tags.0, ["administrator", "monitoring"]);
    let analytics = defs.vhosts.iter().find(|v| v.name == "analytics").unwrap();
    // RabbitMQ writes a vhost created without tags with `"tags": ""`.
    assert!(analytics.metadata.tags.0.is_empty());
}

#[test]
fn malformed_json_reports_line_and_column() {
    let err =
        Definitions::from_json("{\n  \"users\": [\n    {\"name\": \"a\",}\n  ]\n}").unwrap_err();
    assert!(
        matches!(err, DefinitionsError::Json { line: 3, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "malformed definitions at line 3, column 18: trailing comma"
    );
}

#[test]
fn a_field_of_the_wrong_type_reports_where() {
    let err =
        Definitions::from_json(r#"{"queues": [{"name": "q", "vhost": "/", "durable": "yes"}]}"#)
            .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("malformed definitions at line 1, column 56: invalid type: string \"yes\", expected a boolean"),
        "{err}"
    );
}

#[test]
fn unknown_top_level_keys_and_empty_files_are_tolerated() {
    let defs =
        Definitions::from_json(r#"{"explanation": "from a tool", "vhosts": [{"name": "v"}]}"#)
            .unwrap();
    assert_eq!(defs.vhosts.len(), 1);
    assert_eq!(
        Definitions::from_json("  \n").unwrap(),
        Definitions::default()
    );
}

// ---- importing the fixture ----

#[test]
fn import_counts_everything_and_says_what_is_not_applied() {
    let broker = Broker::new(BrokerConfig::default());
    let summary = import(&broker, &fixture()).unwrap();
    assert_eq!(
        summary,
        ImportSummary {
            users: 4,
            vhosts: 3,
            permissions: 6,
            exchanges: 8,
            queues: 7,
            bindings: 10,
            policies: 1,
            parameters: 1,
            global_parameters: 1,
            topic_permissions: 1,
        }
    );
    assert_eq!(
        summary.to_string(),
        "4 users, 3 vhosts, 6 permissions, 1 policy, 8 exchanges, 7 queues, 10 bindings; kept but \
         not applied yet: 1 parameter, 1 global parameter, 1 topic permission"
    );
}

#[test]
fn imported_users_log_in_with_the_passwords_set_in_rabbitmq() {
    let broker = imported();
    assert!(login(&broker, "alice", "alice-secret"));
    assert!(login(&broker, "bob", "bøb-secret"));
    assert!(login(&broker, "guest", "guest"));
    assert!(!login(&broker, "alice", "bøb-secret"));
    // A blank password is refused before any user is looked at, so ask the user itself.
    assert!(
        broker.users.get("carol").unwrap().password_hash().is_none(),
        "carol has no password"
    );
    let alice = broker.users.get("alice").unwrap();
    assert_eq!(alice.tags(), ["administrator", "monitoring"]);
}

#[test]
fn imported_permissions_keep_their_regexes() {
    let broker = imported();
    let bob = broker.users.get("bob").unwrap();
    let orders = &bob.permissions()["orders"];
    assert_eq!(
        (&*orders.configure, &*orders.write, &*orders.read),
        ("^orders\\..*", "^orders\\..*", ".*")
    );
    assert!(broker.users.may_access("bob", "analytics"));
    assert!(!broker.users.may_access("bob", "/"));
    assert!(broker.users.may_access("alice", "/"));
}

#[test]
fn imported_queues_have_their_arguments_as_rabbitmq_types() {
    let broker = imported();
    let mut vhosts: Vec<String> = broker.vhosts().iter().map(|v| v.name.to_string()).collect();
    vhosts.sort();
    assert_eq!(vhosts, ["/", "analytics", "orders"]);
    let queues = vhost(&broker, "orders").queues();
    let created = queues
        .iter()
        .find(|q| q.name == s("orders.created"))
        .unwrap();
    assert!(created.durable && !created.auto_delete && created.exclusive_owner.is_none());
    let args = &created.arguments;
    assert_eq!(args.get("x-message-ttl"), Some(&FieldValue::I64(60000)));
    assert_eq!(args.get("x-max-length"), Some(&FieldValue::I64(1000)));
    assert_eq!(
        args.get("x-dead-letter-exchange"),
        Some(&FieldValue::from("orders.dlx"))
    );
    assert_eq!(args.get("x-queue-type"), Some(&FieldValue::from("classic")));
    assert_eq!(
        created.settings.message_ttl,
        Some(std::time::Duration::from_secs(60))
    );
    let priority = queues
        .iter()
        .find(|q| q.name == s("orders.priority"))
        .unwrap();
    assert_eq!(priority.settings.max_priority, Some(10));
    let transient = vhost(&broker, "analytics")
        .queues()
        .into_iter()
        .find(|q| q.name == s("transient"))
        .unwrap();
    assert!(!transient.durable);
}

#[test]
fn imported_exchanges_have_their_types_and_flags() {
    let broker = imported();
    let (exchanges, _) = topology::exchanges_and_bindings(&vhost(&broker, "orders"));
    let find = |name: &str| exchanges.iter().find(|x| x.name == s(name)).unwrap();
    assert_eq!(find("orders.direct").kind, s("direct"));
    assert_eq!(find("orders.dlx").kind, s("fanout"));
    assert_eq!(find("orders.headers").kind, s("headers"));
    let topic = find("orders.topic");
    assert_eq!(topic.kind, s("topic"));
    assert_eq!(
        topic.arguments.get("alternate-exchange"),
        Some(&FieldValue::from("orders.unrouted"))
    );
    assert!(find("orders.autodel").auto_delete);
    assert!(vhost(&broker, "analytics").exchange_exists(&s("clicks.transient")));
}

#[test]
fn imported_bindings_route() {
    let broker = imported();
    let orders = vhost(&broker, "orders");
    assert_eq!(
        routed(&vhost(&broker, "/"), "amq.direct", "hello", None),
        ["hello"]
    );
    assert_eq!(
        routed(&orders, "orders.direct", "created", None),
        ["orders.created"]
    );
    assert_eq!(
        routed(&orders, "orders.direct", "urgent", None),
        ["orders.priority"]
    );
    assert_eq!(routed(&orders, "orders.dlx", "any", None), ["orders.dead"]);
    assert_eq!(routed(&orders, "orders.autodel", "eu", None), ["orders.eu"]);
    let eu: FieldTable = [(s("region"), FieldValue::from("eu"))]
        .into_iter()
        .collect();
    assert_eq!(
        routed(&orders, "orders.headers", "", Some(&eu)),
        ["orders.eu"]
    );
    assert!(routed(&orders, "orders.headers", "", Some(&FieldTable::new())).is_empty());
    // orders.topic reaches orders.direct for keys under `orders.`: bind a queue there to see.
    let none = FieldTable::new();
    let spec = QueueSpec {
        name: &s("probe"),
        passive: false,
        durable: false,
        exclusive: false,
        auto_delete: false,
        arguments: &none,
    };
    orders.declare_queue(&spec, 1, Instant::now()).unwrap();
    orders
        .bind_queue(&s("probe"), &s("orders.direct"), &s("orders.new"), &none, 1)
        .unwrap();
    assert_eq!(
        routed(&orders, "orders.topic", "orders.new", None),
        ["probe"]
    );
    let analytics = vhost(&broker, "analytics");
    assert_eq!(
        routed(&analytics, "clicks", "", None),
        ["events", "transient"]
    );
    assert_eq!(routed(&analytics, "clicks.transient", "", None), ["events"]);
}

#[test]
fn importing_the_same_definitions_again_changes_nothing() {
    let broker = imported();
    let again = import(&broker, &fixture()).unwrap();
    assert_eq!(again.queues, 7);
    assert_eq!(vhost(&broker, "orders").queues().len(), 4);
    assert_eq!(
        routed(&vhost(&broker, "orders"), "orders.direct", "created", None),
        ["orders.created"]
    );
    assert!(login(&broker, "alice", "alice-secret"));
}

// ---- exporting ----

/// What two definitions must agree on, ignoring order, versions and what rmqd does not keep
/// (vhost metadata and limits, user limits).
#[derive(Debug, PartialEq)]
struct Semantic {
    users: BTreeSet<(String, String, String, Vec<String>)>,
    vhosts: BTreeSet<String>,
    permissions: BTreeSet<(String, String, String, String, String)>,
    queues: BTreeSet<(String, String, bool, bool, String)>,
    exchanges: BTreeSet<(String, String, String, bool, bool, bool, String)>,
    bindings: BTreeSet<(String, String, DestinationType, String, String, String)>,
}

fn semantic(defs: &Definitions) -> Semantic {
    let json = |m: &serde_json::Map<String, serde_json::Value>| {
        serde_json::Value::Object(m.clone()).to_string()
    };
    Semantic {
        users: defs
            .users
            .iter()
            .map(|u| {
                (
                    u.name.clone(),
                    u.password_hash.clone().unwrap_or_default(),
                    u.hashing_algorithm.clone().unwrap_or_default(),
                    u.tags.0.clone(),
                )
            })
            .collect(),
        vhosts: defs.vhosts.iter().map(|v| v.name.clone()).collect(),
        permissions: defs
            .permissions
            .iter()
            .map(|p| {
                let p = p.clone();
                (p.user, p.vhost, p.configure, p.write, p.read)
            })
            .collect(),
        queues: defs
            .queues
            .iter()
            .map(|q| {
                (
                    q.vhost.clone(),
                    q.name.clone(),
                    q.durable,
                    q.auto_delete,
                    json(&q.arguments),
                )
            })
            .collect(),
        exchanges: defs
            .exchanges
            .iter()
            .map(|x| {
                (
                    x.vhost.clone(),
                    x.name.clone(),
                    x.kind.clone(),
                    x.durable,
                    x.auto_delete,
                    x.internal,
                    json(&x.arguments),
                )
            })
            .collect(),
        bindings: defs
            .bindings
            .iter()
            .map(|b| {
                (
                    b.vhost.clone(),
                    b.source.clone(),
                    b.destination_type,
                    b.destination.clone(),
                    b.routing_key.clone(),
                    json(&b.arguments),
                )
            })
            .collect(),
    }
}

#[test]
fn export_after_import_matches_rabbitmqs_export() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(BrokerConfig::default(), dir.path()).unwrap();
    import(&broker, &fixture()).unwrap();
    let exported = export(&broker);
    assert_eq!(semantic(&exported), semantic(&fixture()));
    assert_eq!(exported.product_name.as_deref(), Some("rmqd"));
    assert_eq!(
        exported.rabbitmq_version.as_deref(),
        Some(RABBITMQ_FORMAT_VERSION)
    );
}

#[test]
fn exported_json_has_rabbitmqs_shape() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(BrokerConfig::default(), dir.path()).unwrap();
    import(&broker, &fixture()).unwrap();
    let exported: serde_json::Value =
        serde_json::from_str(&export(&broker).to_json_pretty()).unwrap();
    let rabbit: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    let keys =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    // RabbitMQ's keys, plus the product fields its management export also writes.
    let mut expected = keys(&rabbit);
    expected.extend(["product_name".to_string(), "product_version".to_string()]);
    expected.sort();
    assert_eq!(keys(&exported), expected);
    for list in [
        "users",
        "vhosts",
        "permissions",
        "queues",
        "exchanges",
        "bindings",
    ] {
        let mut ours = keys(&exported[list][0]);
        let theirs = keys(&rabbit[list][0]);
        // The one field rmqd adds: see `ExchangeDef::internal`.
        ours.retain(|k| k != "internal");
        assert_eq!(ours, theirs, "{list}");
    }
    let guest = exported["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "guest")
        .unwrap();
    assert_eq!(guest["hashing_algorithm"], "rabbit_password_hashing_sha256");
    assert_eq!(guest["tags"], serde_json::json!(["administrator"]));
}

#[test]
fn export_reimports_into_a_fresh_broker_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let first = Broker::open(BrokerConfig::default(), dir.path()).unwrap();
    import(&first, &fixture()).unwrap();
    let text = export(&first).to_json_pretty();
    let dir2 = tempfile::tempdir().unwrap();
    let second = Broker::open(BrokerConfig::default(), dir2.path()).unwrap();
    import(&second, &Definitions::from_json(&text).unwrap()).unwrap();
    assert_eq!(export(&second), export(&first));
    assert!(login(&second, "bob", "bøb-secret"));
}

#[test]
fn export_leaves_out_exclusive_queues_and_standard_exchanges_but_not_internal_ones() {
    let broker = Broker::new(BrokerConfig::default());
    let defs = Definitions::from_json(
        r#"{"vhosts": [{"name": "/"}],
            "exchanges": [{"name": "audit", "vhost": "/", "type": "topic", "internal": true}]}"#,
    )
    .unwrap();
    import(&broker, &defs).unwrap();
    let none = FieldTable::new();
    let spec = QueueSpec {
        name: &s("mine"),
        passive: false,
        durable: false,
        exclusive: true,
        auto_delete: false,
        arguments: &none,
    };
    vhost(&broker, "/")
        .declare_queue(&spec, 7, Instant::now())
        .unwrap();
    let exported = export(&broker);
    assert!(exported.queues.is_empty());
    assert_eq!(exported.exchanges.len(), 1);
    assert!(exported.exchanges[0].internal);
}

#[test]
fn export_leaves_out_permissions_for_vhosts_that_are_gone() {
    let broker = Broker::new(BrokerConfig::default());
    broker.add_vhost("/");
    broker.users.add("u", "p");
    broker.users.grant("u", "/");
    broker.users.grant("u", "deleted");
    let exported = export(&broker);
    assert_eq!(exported.permissions.len(), 1);
    assert_eq!(exported.permissions[0].vhost, "/");
}

// ---- what goes wrong ----

#[test]
fn binding_to_a_missing_queue_names_the_binding() {
    let err = import_err(
        r#"{"vhosts": [{"name": "/"}],
            "exchanges": [{"name": "x", "vhost": "/", "type": "direct"}],
            "bindings": [{"source": "x", "vhost": "/", "destination": "nope",
                          "destination_type": "queue", "routing_key": "k", "arguments": {}}]}"#,
    );
    assert_eq!(
        err,
        "binding from exchange 'x' to queue 'nope' with routing key 'k' in vhost '/': \
         destination queue 'nope' does not exist"
    );
}

#[test]
fn rabbitmq_3_10_exports_with_bound_internal_exchanges_say_how_to_fix_them() {
    let err = import_err(
        r##"{"vhosts": [{"name": "/"}],
            "exchanges": [{"name": "x", "vhost": "/", "type": "topic"}],
            "bindings": [{"source": "x", "vhost": "/", "destination": "audit",
                          "destination_type": "exchange", "routing_key": "#", "arguments": {}}]}"##,
    );
    assert!(
        err.ends_with(
            "destination exchange 'audit' does not exist (RabbitMQ 3.10 does not export \
             internal exchanges: add it to the file with \"internal\": true)"
        ),
        "{err}"
    );
}

#[test]
fn unknown_exchange_type_names_the_exchange() {
    let err = import_err(
        r#"{"vhosts": [{"name": "/"}],
            "exchanges": [{"name": "later", "vhost": "/", "type": "x-delayed-message"}]}"#,
    );
    assert_eq!(
        err,
        "exchange 'later' in vhost '/': unknown exchange type 'x-delayed-message' (rmqd has \
         direct, fanout, topic and headers)"
    );
}

#[test]
fn a_bad_file_changes_nothing() {
    let broker = Broker::new(BrokerConfig::default());
    let defs = Definitions::from_json(
        r#"{"users": [{"name": "u", "password_hash": "", "tags": []}],
            "vhosts": [{"name": "v"}],
            "queues": [{"name": "q", "vhost": "v", "arguments": {"x-message-ttl": -5}}]}"#,
    )
    .unwrap();
    let err = import(&broker, &defs).unwrap_err().to_string();
    assert_eq!(
        err,
        "queue 'q' in vhost 'v': PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue \
         'q' in vhost 'v': {value_negative,-5}"
    );
    assert!(broker.vhost(b"v").is_none());
    assert!(!broker.users.exists("u"));
}

#[test]
fn references_to_missing_users_and_vhosts_are_named() {
    assert_eq!(
        import_err(
            r#"{"vhosts": [{"name": "/"}],
                "permissions": [{"user": "ghost", "vhost": "/", "configure": ".*",
                                 "write": ".*", "read": ".*"}]}"#
        ),
        "permissions of user 'ghost' in vhost '/': no user 'ghost' in the definitions or the broker"
    );
    assert_eq!(
        import_err(r#"{"queues": [{"name": "q", "vhost": "elsewhere"}]}"#),
        "queue 'q' in vhost 'elsewhere': no vhost 'elsewhere' in the definitions or the broker"
    );
}

#[test]
fn a_conflicting_existing_queue_is_an_error_naming_it() {
    let broker = imported();
    let mut defs = fixture();
    let created = defs
        .queues
        .iter_mut()
        .find(|q| q.name == "orders.created")
        .unwrap();
    created
        .arguments
        .insert("x-max-length".into(), serde_json::json!(5));
    let err = import(&broker, &defs).unwrap_err().to_string();
    assert_eq!(
        err,
        "queue 'orders.created' in vhost 'orders': PRECONDITION_FAILED - inequivalent arg \
         'x-max-length' for queue 'orders.created' in vhost 'orders': received '5' but current \
         is '1000'"
    );
}

#[test]
fn bad_users_are_named() {
    assert_eq!(
        import_err(
            r#"{"users": [{"name": "u", "password_hash": "abc",
                           "hashing_algorithm": "rabbit_password_hashing_sha1", "tags": []}]}"#
        ),
        "user 'u': unknown hashing algorithm 'rabbit_password_hashing_sha1'"
    );
    assert_eq!(
        import_err(r#"{"users": [{"name": "u", "password_hash": "c2hvcnQ=", "tags": []}]}"#),
        "user 'u': invalid password_hash: 5 bytes where rabbit_password_hashing_sha256 hashes \
         are 36 (a 4-byte salt and a 32-byte digest)"
    );
}

#[test]
fn old_files_without_hashing_algorithm_use_md5_and_comma_separated_tags() {
    let broker = Broker::new(BrokerConfig::default());
    // A RabbitMQ 3.5 export: no hashing_algorithm, tags as a string. The hash is RabbitMQ's
    // salted MD5 of "secret".
    let defs = Definitions::from_json(
        r#"{"rabbit_version": "3.5.7",
            "users": [{"name": "old", "password_hash": "SDBABfZXQdG/vD7ZOSfuraVVMy0=",
                       "tags": "administrator,management"}]}"#,
    )
    .unwrap();
    import(&broker, &defs).unwrap();
    assert!(login(&broker, "old", "secret"));
    let old = broker.users.get("old").unwrap();
    assert_eq!(old.tags(), ["administrator", "management"]);
    assert_eq!(old.password_hash().algorithm(), HashingAlgorithm::Md5);
}

#[test]
fn clear_text_passwords_in_hand_written_files_are_hashed() {
    let broker = Broker::new(BrokerConfig::default());
    let defs =
        Definitions::from_json(r#"{"users": [{"name": "dev", "password": "dev", "tags": ""}]}"#)
            .unwrap();
    import(&broker, &defs).unwrap();
    assert!(login(&broker, "dev", "dev"));
    let exported = &export(&broker).users[0];
    let algorithm = exported
        .hashing_algorithm
        .as_deref()
        .and_then(HashingAlgorithm::from_name)
        .expect("the export names a known hashing algorithm");
    let hash = PasswordHash::from_base64(
        exported.password_hash.as_deref().expect("a password_hash"),
        algorithm,
    )
    .expect("the export carries a valid hash");
    assert!(hash.verify("dev"), "the hash is of the file's password");
}

#[test]
fn amq_prefixed_entities_are_skipped_like_rabbitmq_does() {
    let broker = Broker::new(BrokerConfig::default());
    let defs = Definitions::from_json(
        r#"{"vhosts": [{"name": "/"}],
            "exchanges": [{"name": "amq.direct", "vhost": "/", "type": "direct"}],
            "queues": [{"name": "amq.reserved", "vhost": "/"}]}"#,
    )
    .unwrap();
    let summary = import(&broker, &defs).unwrap();
    assert_eq!((summary.exchanges, summary.queues), (0, 0));
}

#[test]
fn load_file_reads_and_imports() {
    let broker = Broker::new(BrokerConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("definitions.json");
    std::fs::write(&path, FIXTURE).unwrap();
    assert_eq!(load_file(&broker, &path).unwrap().queues, 7);
    let missing = dir.path().join("missing.json");
    let err = load_file(&broker, &missing).unwrap_err();
    assert!(matches!(err, DefinitionsError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.json"), "{err}");
}
