//! Users, permissions, policies and the first-start defaults live in the data dir: what an
//! operator sets survives a restart, and a restart does not undo it.

use rmqd_broker::policy::{ApplyTo, Policy};
use rmqd_broker::{Broker, BrokerConfig, Permissions, Setup};

fn open(dir: &std::path::Path) -> std::sync::Arc<Broker> {
    let broker = Broker::open(BrokerConfig::default(), dir).expect("opens the data dir");
    Setup::default().apply(&broker);
    broker
}

#[test]
fn users_permissions_and_policies_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = open(dir.path());
        broker.add_vhost("orders");
        broker.users.add("alice", "alice-secret");
        broker
            .users
            .set_tags("alice", vec!["monitoring".to_string()])
            .unwrap();
        broker
            .users
            .set_permissions("alice", "orders", Permissions::new("^alice", ".*", ""))
            .unwrap();
        broker.users.add("bob", "bob-secret");
        broker.users.delete("bob").unwrap();
        broker.users.change_password("guest", "changed").unwrap();
        let orders = broker.vhost(b"orders").unwrap();
        let ttl = |name: &str, ms: u64| {
            Policy::from_json(
                name,
                "^tmp\\.",
                ApplyTo::Queues,
                &format!(r#"{{"message-ttl":{ms}}}"#),
                1,
            )
            .unwrap()
        };
        orders.set_policy(ttl("short", 1000));
        orders.set_policy(ttl("gone", 5));
        assert!(orders.clear_policy("gone"));
    }

    let broker = open(dir.path());
    assert!(broker.users.authenticate("alice", "alice-secret").is_ok());
    assert!(
        broker.users.authenticate("bob", "bob-secret").is_err(),
        "bob was deleted"
    );
    assert!(
        broker.users.authenticate("guest", "changed").is_ok(),
        "the changed password stays: defaults are applied on the first start only"
    );
    assert!(broker.users.authenticate("guest", "guest").is_err());
    let alice = broker.users.get("alice").unwrap();
    assert_eq!(alice.tags(), ["monitoring"]);
    assert_eq!(
        broker.users.permissions_in("alice", "orders"),
        Some(Permissions::new("^alice", ".*", ""))
    );
    assert_eq!(
        broker.users.get("guest").unwrap().tags(),
        ["administrator"],
        "the default user is an administrator, as in RabbitMQ"
    );
    let policies = broker.vhost(b"orders").unwrap().policies();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].name, "short");
    assert_eq!(policies[0].definition_json(), r#"{"message-ttl":1000}"#);
}

#[test]
fn a_deleted_default_user_and_vhost_stay_deleted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = open(dir.path());
        broker.users.add("admin", "s3cret");
        broker.users.delete("guest").unwrap();
        assert!(broker.delete_vhost("/"));
    }
    let broker = open(dir.path());
    assert!(!broker.users.exists("guest"));
    assert!(broker.vhost(b"/").is_none());
    assert!(broker.users.authenticate("admin", "s3cret").is_ok());
}
