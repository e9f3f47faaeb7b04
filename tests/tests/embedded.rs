//! The broker a test suite embeds: `rmqd::EmbeddedBroker`, driven here exactly as a user's
//! tests would drive it, through amqprs and lapin.

mod common;

use std::time::{Duration, Instant};

use amqprs::BasicProperties as AProps;
use amqprs::channel::{BasicGetArguments, BasicPublishArguments, QueueDeclareArguments};
use amqprs::connection::{Connection as AConnection, OpenConnectionArguments};
use common::{
    WAIT, amqp_error, connect_url, passive_declare, rabbitmq_fixture, watched_url, within,
};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use rmqd::EmbeddedBroker;

async fn amqprs_connect(url: &str) -> AConnection {
    let args = OpenConnectionArguments::try_from(url).expect("amqprs parses the broker's URL");
    within("amqprs connection", AConnection::open(&args))
        .await
        .expect("amqprs connects to the embedded broker")
}

#[tokio::test]
async fn amqprs_publishes_and_gets_through_the_embedded_broker() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    assert!(
        broker
            .amqp_url()
            .starts_with("amqp://guest:guest@127.0.0.1:")
    );
    assert!(broker.amqp_url().ends_with(&format!(":{}", broker.port())));

    let conn = amqprs_connect(&broker.amqp_url()).await;
    let ch = conn.open_channel(None).await.expect("channel");
    ch.queue_declare(QueueDeclareArguments::new("jobs"))
        .await
        .expect("declare");
    ch.basic_publish(
        AProps::default(),
        b"hello".to_vec(),
        BasicPublishArguments::new("", "jobs"),
    )
    .await
    .expect("publish");
    let deadline = Instant::now() + WAIT;
    let got = loop {
        if let Some((_, _, body)) = ch
            .basic_get(BasicGetArguments::new("jobs").no_ack(true).finish())
            .await
            .expect("get")
        {
            break body;
        }
        assert!(Instant::now() < deadline, "the message never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(got, b"hello");
    conn.close().await.expect("close");
}

#[tokio::test]
async fn isolated_vhosts_do_not_see_each_others_queues() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let first = broker.isolated_vhost();
    let second = broker.isolated_vhost();
    assert_ne!(first.name(), second.name());

    let a = connect_url(first.amqp_url())
        .await
        .expect("lapin connects to the embedded broker");
    let ch_a = a.create_channel().await.expect("channel");
    ch_a.queue_declare(
        "shared-name".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("declare in the first vhost");

    let b = connect_url(second.amqp_url())
        .await
        .expect("lapin connects to the embedded broker");
    let ch_b = b.create_channel().await.expect("channel");
    let err = passive_declare(&ch_b, "shared-name")
        .await
        .expect_err("the queue is not in the second vhost");
    let (code, text) = amqp_error(&err).expect("a channel.close");
    assert_eq!(code, 404);
    assert!(text.contains(second.name()), "{text}");
}

#[tokio::test]
async fn dropping_an_isolated_vhost_closes_its_connections_and_deletes_it() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let vhost = broker.isolated_vhost();
    let name = vhost.name().to_string();
    let url = vhost.amqp_url().to_string();
    let mut client = watched_url(&url).await;
    client.declare_queue("q").await;

    drop(vhost);
    client
        .expect_connection_close(
            320,
            &format!("CONNECTION_FORCED - vhost '{name}' is deleted"),
        )
        .await;
    let again = connect_url(&url)
        .await
        .expect_err("the deleted vhost still accepts connections");
    assert_eq!(amqp_error(&again).map(|(code, _)| code), Some(530));
    assert!(broker.broker().vhost(name.as_bytes()).is_none());
}

#[tokio::test]
async fn dropping_the_broker_stops_it() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let addr = broker.addr();
    let conn = amqprs_connect(&broker.amqp_url()).await;
    drop(broker);
    let deadline = Instant::now() + WAIT;
    while conn.is_open() {
        assert!(Instant::now() < deadline, "the connection stayed open");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port still accepts connections"
    );
}

#[tokio::test]
async fn builder_adds_users_and_vhosts() {
    let broker = EmbeddedBroker::builder()
        .user("app", "s3cret/:@")
        .vhost("orders")
        .start()
        .await
        .expect("broker starts");
    let url = rmqd::amqp_url("127.0.0.1", broker.port(), "app", "s3cret/:@", "orders");
    let conn = connect_url(&url)
        .await
        .expect("lapin connects to the embedded broker");
    assert!(conn.status().connected());
    let wrong = rmqd::amqp_url("127.0.0.1", broker.port(), "app", "nope", "orders");
    let err = connect_url(&wrong)
        .await
        .expect_err("a wrong password is refused");
    assert_eq!(amqp_error(&err).map(|(code, _)| code), Some(403));
}

/// Tests that are not async get a broker on a runtime of its own.
#[test]
fn a_blocking_start_serves_clients_on_other_runtimes() {
    let broker = EmbeddedBroker::builder()
        .start_blocking()
        .expect("broker starts");
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    client.block_on(async {
        let conn = connect_url(&broker.amqp_url())
            .await
            .expect("lapin connects to the embedded broker");
        assert!(conn.status().connected());
    });
}

#[tokio::test]
async fn builder_preloads_rabbitmq_definitions() {
    let fixture = rabbitmq_fixture();
    let broker = EmbeddedBroker::builder()
        .definitions_file(&fixture)
        .start()
        .await
        .expect("broker starts with the definitions");
    let url = rmqd::amqp_url(
        "127.0.0.1",
        broker.port(),
        "alice",
        "alice-secret",
        "orders",
    );
    let conn = connect_url(&url)
        .await
        .expect("lapin connects to the embedded broker");
    let ch = conn.create_channel().await.expect("channel");
    passive_declare(&ch, "orders.dead")
        .await
        .expect("the queue from the definitions exists");
}
