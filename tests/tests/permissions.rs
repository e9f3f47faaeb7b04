//! Per-vhost permissions enforced on every operation, as RabbitMQ 3.10 does: configure to
//! declare and delete, write to publish and bind into, read to consume, get, purge and bind
//! from; 403 ACCESS_REFUSED in RabbitMQ's words otherwise.
//!
//! Most tests use `bob`, who may configure names starting `conf` or `both`, write to names
//! starting `write` or `both`, and read names starting `read` or `both`. Guest (full
//! permissions) makes what bob works on. Each operation runs on a channel of its own, so one
//! refusal does not hide the next.

mod common;

use amqprs::BasicProperties as AProps;
use amqprs::channel::ConfirmSelectArguments;
use lapin::options::{
    BasicGetOptions, ExchangeBindOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ExchangeKind};
use rmqd_broker::{BrokerConfig, Permissions};

use common::*;

const PASSWORD: &str = "s3cret";

fn bobs_permissions() -> Permissions {
    Permissions::new("^(conf|both)", "^(write|both)", "^(read|both)")
}

/// A broker where `user` has `permissions` in `/`.
fn broker_with(user: &str, permissions: Permissions) -> TestBroker {
    TestBroker::start_with(BrokerConfig::default(), |broker| {
        broker.users.add(user, PASSWORD);
        broker
            .users
            .set_permissions(user, "/", permissions)
            .expect("the user exists");
    })
}

/// RabbitMQ's refusal: `ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'bob'`.
fn refused(kind: &str, name: &str, user: &str) -> String {
    format!("ACCESS_REFUSED - access to {kind} '{name}' in vhost '/' refused for user '{user}'")
}

/// Exchanges `write_x`, `read_x`, `other_x` and queues `write_q`, `read_q`, `other_q`, made by
/// guest; `read_q` is bound to `write_x` with key `k`.
async fn fixtures(broker: &TestBroker) {
    let (_conn, ch) = connect_channel(broker).await;
    for x in ["write_x", "read_x", "other_x"] {
        declare_exchange(&ch, x, ExchangeKind::Direct).await;
    }
    for q in ["write_q", "read_q", "other_q"] {
        declare_queue(&ch, q).await;
    }
    bind(&ch, "read_q", "write_x", "k").await;
}

/// A lapin client logged in as some user; every operation gets a channel of its own.
struct Client {
    conn: Connection,
}

impl Client {
    async fn new(broker: &TestBroker, user: &str) -> Client {
        let url = url_for(broker, user, PASSWORD, "/");
        let conn = connect_url(&url).await.expect("the user may open /");
        Client { conn }
    }

    async fn declare_exchange(&self, name: &str, arguments: FieldTable) -> lapin::Result<()> {
        self.exchange_declare(name, ExchangeDeclareOptions::default(), arguments)
            .await
    }

    async fn exchange_declare(
        &self,
        name: &str,
        options: ExchangeDeclareOptions,
        arguments: FieldTable,
    ) -> lapin::Result<()> {
        let ch = open_channel(&self.conn).await;
        within(
            "exchange.declare-ok",
            ch.exchange_declare(name.into(), ExchangeKind::Direct, options, arguments),
        )
        .await
    }

    async fn delete_exchange(&self, name: &str) -> lapin::Result<()> {
        let ch = open_channel(&self.conn).await;
        within(
            "exchange.delete-ok",
            ch.exchange_delete(name.into(), ExchangeDeleteOptions::default()),
        )
        .await
    }

    /// Returns the name of the queue declared.
    async fn declare_queue(&self, name: &str, arguments: FieldTable) -> lapin::Result<String> {
        self.queue_declare(name, QueueDeclareOptions::default(), arguments)
            .await
    }

    async fn queue_declare(
        &self,
        name: &str,
        options: QueueDeclareOptions,
        arguments: FieldTable,
    ) -> lapin::Result<String> {
        let ch = open_channel(&self.conn).await;
        within(
            "queue.declare-ok",
            ch.queue_declare(name.into(), options, arguments),
        )
        .await
        .map(|q| q.name().to_string())
    }

    async fn delete_queue(&self, name: &str) -> lapin::Result<u32> {
        let ch = open_channel(&self.conn).await;
        within(
            "queue.delete-ok",
            ch.queue_delete(name.into(), QueueDeleteOptions::default()),
        )
        .await
    }

    async fn bind_queue(&self, queue: &str, exchange: &str) -> lapin::Result<()> {
        let ch = open_channel(&self.conn).await;
        within(
            "queue.bind-ok",
            ch.queue_bind(
                queue.into(),
                exchange.into(),
                "bound".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
    }

    async fn unbind_queue(&self, queue: &str, exchange: &str) -> lapin::Result<()> {
        let ch = open_channel(&self.conn).await;
        within(
            "queue.unbind-ok",
            ch.queue_unbind(
                queue.into(),
                exchange.into(),
                "bound".into(),
                FieldTable::default(),
            ),
        )
        .await
    }

    async fn bind_exchange(&self, destination: &str, source: &str) -> lapin::Result<()> {
        let ch = open_channel(&self.conn).await;
        within(
            "exchange.bind-ok",
            ch.exchange_bind(
                destination.into(),
                source.into(),
                "bound".into(),
                ExchangeBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
    }

    async fn unbind_exchange(&self, destination: &str, source: &str) -> lapin::Result<()> {
        let ch = open_channel(&self.conn).await;
        within(
            "exchange.unbind-ok",
            ch.exchange_unbind(
                destination.into(),
                source.into(),
                "bound".into(),
                Default::default(),
                FieldTable::default(),
            ),
        )
        .await
    }

    async fn purge(&self, queue: &str) -> lapin::Result<u32> {
        let ch = open_channel(&self.conn).await;
        within(
            "queue.purge-ok",
            ch.queue_purge(queue.into(), QueuePurgeOptions::default()),
        )
        .await
    }

    /// basic.get with no-ack; the body if a message was there.
    async fn get(&self, queue: &str) -> lapin::Result<Option<Vec<u8>>> {
        let ch = open_channel(&self.conn).await;
        within(
            "basic.get-ok or get-empty",
            ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }),
        )
        .await
        .map(|m| m.map(|m| m.delivery.data))
    }

    async fn consume(&self, queue: &str) -> lapin::Result<String> {
        let ch = open_channel(&self.conn).await;
        consume(&ch, queue, "", Default::default())
            .await
            .map(|c| c.tag)
    }
}

/// An amqprs channel in confirm mode for `user`: a publish shows up as an ack, or as the
/// channel.close that refused it.
async fn publisher(broker: &TestBroker, user: &str) -> Watched {
    let w = watched_channel_as(broker, user, PASSWORD).await;
    within(
        "confirm.select-ok",
        w.ch.confirm_select(ConfirmSelectArguments::default()),
    )
    .await
    .expect("confirm.select");
    w
}

async fn expect_ack(w: &mut Watched, tag: u64) {
    match next_notice(&mut w.notices).await {
        Notice::Ack(t, _) => assert_eq!(t, tag, "delivery tag of the ack"),
        other => panic!("expected the publish to be acked, got {other:?}"),
    }
}

fn alternate(exchange: &str) -> FieldTable {
    table(&[("alternate-exchange", long_str(exchange))])
}

fn dead_letters_to(exchange: &str) -> FieldTable {
    table(&[("x-dead-letter-exchange", long_str(exchange))])
}

#[tokio::test]
async fn exchange_declare_needs_configure_on_the_exchange() {
    let broker = broker_with("bob", bobs_permissions());
    fixtures(&broker).await;
    let bob = Client::new(&broker, "bob").await;
    bob.declare_exchange("conf_x", FieldTable::default())
        .await
        .expect("configure matches conf_x");
    assert_closed_with(
        bob.declare_exchange("new_x", FieldTable::default()).await,
        403,
        &refused("exchange", "new_x", "bob"),
    );
    // Redeclaring an existing exchange needs configure too.
    assert_closed_with(
        bob.declare_exchange("other_x", FieldTable::default()).await,
        403,
        &refused("exchange", "other_x", "bob"),
    );
}

#[tokio::test]
async fn a_new_exchange_with_an_alternate_needs_read_on_it_and_write_on_the_alternate() {
    let broker = broker_with("bob", bobs_permissions());
    fixtures(&broker).await;
    let (_conn, guest) = connect_channel(&broker).await;
    within(
        "exchange.declare-ok",
        guest.exchange_declare(
            "both_existing".into(),
            ExchangeKind::Direct,
            Default::default(),
            alternate("other_x"),
        ),
    )
    .await
    .expect("guest declares an exchange with an alternate");
    let bob = Client::new(&broker, "bob").await;

    bob.declare_exchange("both_ae", alternate("write_x"))
        .await
        .expect("configure and read on both_ae, write on write_x");
    assert_closed_with(
        bob.declare_exchange("both_ae2", alternate("other_x")).await,
        403,
        &refused("exchange", "other_x", "bob"),
    );
    // conf_ae may be configured but not read.
    assert_closed_with(
        bob.declare_exchange("conf_ae", alternate("write_x")).await,
        403,
        &refused("exchange", "conf_ae", "bob"),
    );
    // Only a new exchange's alternate is checked.
    bob.declare_exchange("both_existing", alternate("other_x"))
        .await
        .expect("redeclaring an existing exchange checks configure only");
}

#[tokio::test]
async fn passive_declares_need_no_permission() {
    let broker = broker_with("eve", Permissions::new("", "", ""));
    fixtures(&broker).await;
    let eve = Client::new(&broker, "eve").await;
    let passive_exchange = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    eve.exchange_declare("other_x", passive_exchange, FieldTable::default())
        .await
        .expect("a passive exchange.declare only looks");
    let passive_queue = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    eve.queue_declare("other_q", passive_queue, FieldTable::default())
        .await
        .expect("a passive queue.declare only looks");
    assert_closed_with(
        eve.queue_declare("missing_q", passive_queue, FieldTable::default())
            .await,
        404,
        "NOT_FOUND - no queue 'missing_q' in vhost '/'",
    );
}

#[tokio::test]
async fn exchange_delete_needs_configure_even_for_a_missing_exchange() {
    let broker = broker_with("bob", bobs_permissions());
    fixtures(&broker).await;
    let bob = Client::new(&broker, "bob").await;
    bob.declare_exchange("conf_x", FieldTable::default())
        .await
        .expect("exchange.declare");
    bob.delete_exchange("conf_x")
        .await
        .expect("configure matches conf_x");
    assert_closed_with(
        bob.delete_exchange("other_x").await,
        403,
        &refused("exchange", "other_x", "bob"),
    );
    assert_closed_with(
        bob.delete_exchange("missing_x").await,
        403,
        &refused("exchange", "missing_x", "bob"),
    );
}

#[tokio::test]
async fn queue_declare_needs_configure_on_the_queue() {
    let broker = broker_with("bob", bobs_permissions());
    fixtures(&broker).await;
    let bob = Client::new(&broker, "bob").await;
    assert_eq!(
        bob.declare_queue("conf_q", FieldTable::default())
            .await
            .expect("configure matches conf_q"),
        "conf_q"
    );
    assert_closed_with(
        bob.declare_queue("new_q", FieldTable::default()).await,
        403,
        &refused("queue", "new_q", "bob"),
    );
    assert_closed_with(
        bob.declare_queue("other_q", FieldTable::default()).await,
        403,
        &refused("queue", "other_q", "bob"),
    );
    // A reserved name is refused for what it is, before permissions.
    assert_closed_with(
        bob.declare_queue("amq.q", FieldTable::default()).await,
        403,
        "ACCESS_REFUSED - queue name 'amq.q' contains reserved prefix 'amq.*'",
    );
}

#[tokio::test]
async fn server_named_queues_are_checked_under_their_amq_gen_name() {
    let broker = broker_with("bob", bobs_permissions());
    broker.broker.users.add("carol", PASSWORD);
    broker
        .broker
        .users
        .set_permissions("carol", "/", Permissions::new(r"^amq\.gen-", "", ""))
        .expect("carol exists");
    let bob = Client::new(&broker, "bob").await;
    let err = bob
        .declare_queue("", FieldTable::default())
        .await
        .expect_err("bob may not configure amq.gen-… queues");
    let (code, text) = amqp_error(&err).expect("a channel.close");
    assert_eq!(code, 403);
    let name = text
        .strip_prefix("ACCESS_REFUSED - access to queue '")
        .and_then(|rest| rest.strip_suffix("' in vhost '/' refused for user 'bob'"))
        .unwrap_or_else(|| panic!("unexpected text {text:?}"));
    assert!(name.starts_with("amq.gen-"), "{name}");

    let carol = Client::new(&broker, "carol").await;
    let name = carol
        .declare_queue("", FieldTable::default())
        .await
        .expect("carol may configure amq.gen-… queues");
    assert!(name.starts_with("amq.gen-"), "{name}");
}

#[tokio::test]
async fn a_new_queue_that_dead_letters_needs_read_on_it_and_write_on_the_exchange() {
    let broker = broker_with("bob", bobs_permissions());
    fixtures(&broker).await;
    let (_conn, guest) = connect_channel(&broker).await;
    within(
        "queue.declare-ok",
        guest.queue_declare(
            "both_existing".into(),
            Default::default(),
            dead_letters_to("other_x"),
        ),
    )
    .await
    .expect("guest declares a dead-lettering queue");
    let bob = Client::new(&broker, "bob").await;

    bob.declare_queue("both_dlx", dead_letters_to("write_x"))
        .await
        .expect("configure and read on both_dlx, write on write_x");
    assert_closed_with(
        bob.declare_queue("both_dlx2", dead_letters_to("other_x"))
            .await,
        403,
        &refused("exchange", "other_x", "bob"),
    );
    assert_closed_with(
        bob.declare_queue("both_dlx3", dead_letters_to("")).await,
        403,
        &refused("exchange", "amq.default", "bob"),
    );
    // conf_dlx may be configured but not read.
    assert_closed_with(
        bob.declare_queue("conf_dlx", dead_letters_to("write_x"))
            .await,
        403,
        &refused("queue", "conf_dlx", "bob"),
    );
    bob.declare_queue("both_existing", dead_letters_to("other_x"))
        .await
        .expect("redeclaring an existing queue checks configure only");
}

#[tokio::test]
async fn queue_delete_needs_configure_even_for_a_missing_queue() {
    let broker = broker_with("bob", bobs_permissions());
    fixtures(&broker).await;
    let bob = Client::new(&broker, "bob").await;
    bob.declare_queue("conf_q", FieldTable::default())
        .await
        .expect("queue.declare");
    bob.delete_queue("conf_q")
        .await
        .expect("configure matches conf_q");
    assert_closed_with(
        bob.delete_queue("read_q").await,
        403,
        &refused("queue", "read_q", "bob"),
    );
    assert_closed_with(
        bob.delete_queue("missing_q").await,
        403,
        &refused("queue", "missing_q", "bob"),
    );
}

#[tokio::test]
async fn queue_bind_and_unbind_need_write_on_the_queue_then_read_on_the_exchange() {
    let broker = broker_with("bob", bobs_permissions());
    fixtures(&broker).await;
    let bob = Client::new(&broker, "bob").await;
    bob.bind_queue("write_q", "read_x")
        .await
        .expect("write on write_q, read on read_x");
    bob.unbind_queue("write_q", "read_x")
        .await
        .expect("write on write_q, read on read_x");
    for result in [
        bob.bind_queue("read_q", "read_x").await,
        bob.unbind_queue("read_q", "read_x").await,
        // Both refused: the queue is checked first.
        bob.bind_queue("read_q", "write_x").await,
    ] {
        assert_closed_with(result, 403, &refused("queue", "read_q", "bob"));
    }
    for result in [
        bob.bind_queue("write_q", "write_x").await,
        bob.unbind_queue("write_q", "write_x").await,
    ] {
        assert_closed_with(result, 403, &refused("exchange", "write_x", "bob"));
    }
    // The default exchange is refused after the queue's check, before the exchange's.
    assert_closed_with(
        bob.bind_queue("write_q", "").await,
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    );
    assert_closed_with(
        bob.bind_queue("read_q", "").await,
        403,
        &refused("queue", "read_q", "bob"),
    );
    // Permissions come before existence.
    assert_closed_with(
        bob.bind_queue("write_missing", "read_x").await,
        404,
        "NOT_FOUND - no queue 'write_missing' in vhost '/'",
    );
}

#[tokio::test]
async fn exchange_bind_and_unbind_need_write_on_the_destination_then_read_on_the_source() {
    let broker = broker_with("bob", bobs_permissions());
    fixtures(&broker).await;
    let bob = Client::new(&broker, "bob").await;
    bob.bind_exchange("write_x", "read_x")
        .await
        .expect("write on write_x, read on read_x");
    bob.unbind_exchange("write_x", "read_x")
        .await
        .expect("write on write_x, read on read_x");
    for result in [
        bob.bind_exchange("read_x", "read_x").await,
        bob.unbind_exchange("read_x", "read_x").await,
        // Both refused: the destination is checked first.
        bob.bind_exchange("read_x", "other_x").await,
    ] {
        assert_closed_with(result, 403, &refused("exchange", "read_x", "bob"));
    }
    for result in [
        bob.bind_exchange("write_x", "other_x").await,
        bob.unbind_exchange("write_x", "other_x").await,
    ] {
        assert_closed_with(result, 403, &refused("exchange", "other_x", "bob"));
    }
    // The default exchange as destination is checked as `amq.default`.
    assert_closed_with(
        bob.bind_exchange("", "read_x").await,
        403,
        &refused("exchange", "amq.default", "bob"),
    );
}

#[tokio::test]
async fn purge_get_and_consume_need_read_on_the_queue() {
    let broker = broker_with("bob", bobs_permissions());
    fixtures(&broker).await;
    let bob = Client::new(&broker, "bob").await;
    assert_eq!(bob.purge("read_q").await.expect("read on read_q"), 0);
    assert_eq!(bob.get("read_q").await.expect("read on read_q"), None);
    bob.consume("read_q").await.expect("read on read_q");
    for queue in ["write_q", "missing_q"] {
        assert_closed_with(bob.purge(queue).await, 403, &refused("queue", queue, "bob"));
        assert_closed_with(bob.get(queue).await, 403, &refused("queue", queue, "bob"));
        assert_closed_with(
            bob.consume(queue).await,
            403,
            &refused("queue", queue, "bob"),
        );
    }
    assert_closed_with(
        bob.get("read_missing").await,
        404,
        "NOT_FOUND - no queue 'read_missing' in vhost '/'",
    );
}

#[tokio::test]
async fn publish_needs_write_on_the_exchange() {
    let broker = broker_with("bob", bobs_permissions());
    fixtures(&broker).await;
    let mut w = publisher(&broker, "bob").await;
    w.publish(AProps::default(), "write_x", "k", b"allowed")
        .await;
    expect_ack(&mut w, 1).await;
    let (_conn, guest) = connect_channel(&broker).await;
    assert_eq!(drain(&guest, "read_q").await, ["allowed"]);

    w.publish(AProps::default(), "read_x", "k", b"refused")
        .await;
    w.expect_channel_close(403, &refused("exchange", "read_x", "bob"))
        .await;

    let mut w = publisher(&broker, "bob").await;
    w.publish(AProps::default(), "write_missing", "k", b"lost")
        .await;
    w.expect_channel_close(404, "NOT_FOUND - no exchange 'write_missing' in vhost '/'")
        .await;
}

#[tokio::test]
async fn publish_to_the_default_exchange_needs_write_on_amq_default() {
    let broker = broker_with("bob", bobs_permissions());
    fixtures(&broker).await;
    let mut w = publisher(&broker, "bob").await;
    w.publish(AProps::default(), "", "write_q", b"refused")
        .await;
    w.expect_channel_close(403, &refused("exchange", "amq.default", "bob"))
        .await;

    broker
        .broker
        .users
        .set_permissions("bob", "/", Permissions::new("", r"^amq\.default$", ""))
        .expect("bob exists");
    let mut w = publisher(&broker, "bob").await;
    w.publish(AProps::default(), "", "write_q", b"allowed")
        .await;
    expect_ack(&mut w, 1).await;
    let (_conn, guest) = connect_channel(&broker).await;
    assert_eq!(drain(&guest, "write_q").await, ["allowed"]);
}

#[tokio::test]
async fn empty_patterns_refuse_everything() {
    let broker = broker_with("eve", Permissions::new("", "", ""));
    fixtures(&broker).await;
    let eve = Client::new(&broker, "eve").await;
    assert_closed_with(
        eve.declare_exchange("x", FieldTable::default()).await,
        403,
        &refused("exchange", "x", "eve"),
    );
    assert_closed_with(
        eve.declare_queue("q", FieldTable::default()).await,
        403,
        &refused("queue", "q", "eve"),
    );
    assert_closed_with(
        eve.bind_queue("write_q", "read_x").await,
        403,
        &refused("queue", "write_q", "eve"),
    );
    assert_closed_with(
        eve.get("read_q").await,
        403,
        &refused("queue", "read_q", "eve"),
    );
    for exchange in ["write_x", ""] {
        let mut w = publisher(&broker, "eve").await;
        w.publish(AProps::default(), exchange, "read_q", b"refused")
            .await;
        let shown = if exchange.is_empty() {
            "amq.default"
        } else {
            exchange
        };
        w.expect_channel_close(403, &refused("exchange", shown, "eve"))
            .await;
    }
}

#[tokio::test]
async fn a_permission_changed_while_the_channel_is_open_applies_to_its_next_publish() {
    let broker = broker_with("bob", bobs_permissions());
    fixtures(&broker).await;
    let mut w = publisher(&broker, "bob").await;
    w.publish(AProps::default(), "write_x", "k", b"before")
        .await;
    expect_ack(&mut w, 1).await;

    broker
        .broker
        .users
        .set_permissions("bob", "/", Permissions::new("", "^nothing", ""))
        .expect("bob exists");
    w.publish(AProps::default(), "write_x", "k", b"after").await;
    w.expect_channel_close(403, &refused("exchange", "write_x", "bob"))
        .await;
    let (_conn, guest) = connect_channel(&broker).await;
    assert_eq!(drain(&guest, "read_q").await, ["before"]);
}

#[tokio::test]
async fn cleared_permissions_refuse_the_open_channel_everything() {
    let broker = broker_with("bob", bobs_permissions());
    fixtures(&broker).await;
    let mut w = publisher(&broker, "bob").await;
    w.publish(AProps::default(), "write_x", "k", b"before")
        .await;
    expect_ack(&mut w, 1).await;
    broker
        .broker
        .users
        .clear_permissions("bob", "/")
        .expect("bob exists");
    w.publish(AProps::default(), "write_x", "k", b"after").await;
    w.expect_channel_close(403, &refused("exchange", "write_x", "bob"))
        .await;
}

#[tokio::test]
async fn a_user_without_permissions_in_the_vhost_cannot_open_it() {
    let broker = TestBroker::start_with(BrokerConfig::default(), |broker| {
        broker.users.add("mallory", PASSWORD);
    });
    assert_closed_with(
        connect_url(&url_for(&broker, "mallory", PASSWORD, "/")).await,
        530,
        "NOT_ALLOWED - access to vhost '/' refused for user 'mallory'",
    );
}

#[tokio::test]
async fn guest_keeps_full_permissions() {
    let broker = TestBroker::start();
    let (_conn, ch) = connect_channel(&broker).await;
    declare_exchange(&ch, "any_x", ExchangeKind::Fanout).await;
    let queue = within(
        "queue.declare-ok",
        ch.queue_declare("".into(), Default::default(), FieldTable::default()),
    )
    .await
    .expect("a server-named queue");
    bind(&ch, queue.name().as_str(), "any_x", "").await;
    publish(&ch, "any_x", "", b"via any_x").await;
    publish(&ch, "", queue.name().as_str(), b"via the default exchange").await;
    assert_eq!(
        drain(&ch, queue.name().as_str()).await,
        ["via any_x", "via the default exchange"]
    );
    within(
        "exchange.delete-ok",
        ch.exchange_delete("any_x".into(), Default::default()),
    )
    .await
    .expect("exchange.delete");
}
