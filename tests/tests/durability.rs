//! Persistence, through the real `rmqd` binary and lapin: what is confirmed survives `kill -9`,
//! what is acked does not come back, order holds, and a SIGTERM closes connections with 320 and
//! flushes. Each test runs its own rmqd on a free port and a temporary data dir.

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Event, Notice, Recorder, WAIT, amqp_error, assert_closed_with, connect_url, consume, ctl_ok,
    declare_queue, get_body, next_notice, open_channel, passive_declare, publish, rmqd_command,
    wait_exit, within,
};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};

const QUEUE: &str = "durable-work";

struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    async fn start(data_dir: &Path) -> Daemon {
        Self::start_with(data_dir, &[]).await
    }

    async fn start_with(data_dir: &Path, extra: &[&str]) -> Daemon {
        let port = free_port();
        let child = rmqd_command()
            .args(["--bind", "127.0.0.1", "--log-level", "warn", "--port"])
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("rmqd starts");
        let daemon = Daemon { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "rmqd did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        daemon
    }

    fn url(&self) -> String {
        self.url_as("guest", "guest", "/")
    }

    fn url_as(&self, user: &str, pass: &str, vhost: &str) -> String {
        rmqd_broker::amqp_url("127.0.0.1", self.port, user, pass, vhost)
    }

    async fn connect(&self) -> (Connection, Channel) {
        let conn = connect_url(&self.url()).await.expect("lapin connects");
        let ch = open_channel(&conn).await;
        (conn, ch)
    }

    fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        wait_exit(&mut self.child, "SIGTERM")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

async fn declare_durable(ch: &Channel) {
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    within(
        "queue.declare-ok",
        ch.queue_declare(QUEUE.into(), options, FieldTable::default()),
    )
    .await
    .expect("queue.declare");
}

/// Publishes `bodies` as persistent messages to the work queue and waits until every one of
/// them is confirmed (the channel is in confirm mode).
async fn publish_confirmed(ch: &Channel, bodies: impl IntoIterator<Item = Vec<u8>>) {
    let mut confirms = Vec::new();
    for body in bodies {
        let confirm = ch
            .basic_publish(
                "".into(),
                QUEUE.into(),
                BasicPublishOptions::default(),
                &body,
                persistent(),
            )
            .await
            .expect("basic.publish");
        confirms.push(confirm);
    }
    for confirm in confirms {
        assert!(confirm.await.expect("confirm").is_ack());
    }
}

/// Everything in the queue now, in order, with its redelivered flag; acked afterwards, and the
/// ack known to be processed (a later synchronous method was answered).
async fn take_all(ch: &Channel) -> Vec<(u64, bool)> {
    let mut found = Vec::new();
    let mut last_tag = None;
    while let Some(message) = within(
        "basic.get",
        ch.basic_get(QUEUE.into(), BasicGetOptions::default()),
    )
    .await
    .expect("basic.get")
    {
        let body: [u8; 8] = message.delivery.data[..].try_into().expect("8-byte body");
        found.push((u64::from_be_bytes(body), message.delivery.redelivered));
        last_tag = Some(message.delivery.delivery_tag);
    }
    if let Some(tag) = last_tag {
        ch.basic_ack(tag, BasicAckOptions { multiple: true })
            .await
            .expect("basic.ack");
        barrier(ch).await;
    }
    found
}

/// A synchronous round trip: once answered, the broker has processed everything sent before.
async fn barrier(ch: &Channel) {
    within("basic.qos-ok", ch.basic_qos(50, BasicQosOptions::default()))
        .await
        .expect("basic.qos");
}

#[derive(Default)]
struct Ledger {
    confirmed: BTreeSet<u64>,
    /// Acks sent: these may or may not be back after a kill.
    ack_sent: BTreeSet<u64>,
    /// Acked, and the ack surely processed by the broker: these must never come back.
    acked: BTreeSet<u64>,
}

impl Ledger {
    /// Confirmed messages whose ack was never sent, missing from `present`: what the broker
    /// lost.
    fn lost(&self, present: &BTreeSet<u64>) -> Vec<u64> {
        self.confirmed
            .difference(&self.ack_sent)
            .filter(|n| !present.contains(n))
            .copied()
            .collect()
    }
}

/// Publishes sequence numbers with confirms until the connection dies.
async fn publish_until_killed(ch: Channel, from: u64, ledger: Arc<Mutex<Ledger>>) {
    within(
        "confirm.select-ok",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect("confirm.select");
    let mut next = from;
    loop {
        let mut pending = Vec::new();
        for n in next..next + 20 {
            let Ok(confirm) = ch
                .basic_publish(
                    "".into(),
                    QUEUE.into(),
                    BasicPublishOptions::default(),
                    &n.to_be_bytes(),
                    persistent(),
                )
                .await
            else {
                return;
            };
            pending.push((n, confirm));
        }
        next += 20;
        for (n, confirm) in pending {
            match confirm.await {
                Ok(c) if c.is_ack() => {
                    ledger.lock().unwrap().confirmed.insert(n);
                }
                _ => return,
            }
        }
    }
}

/// Consumes and acks until the connection dies; a message counts as acked once a later
/// synchronous method was answered.
async fn consume_until_killed(ch: Channel, ledger: Arc<Mutex<Ledger>>) {
    let Ok(mut consumer) = consume(&ch, QUEUE, "kill-9", BasicConsumeOptions::default()).await
    else {
        return;
    };
    loop {
        let Some(Event::Delivery(delivery)) = consumer.events.recv().await else {
            return;
        };
        let body: [u8; 8] = delivery.data[..].try_into().expect("8-byte body");
        let n = u64::from_be_bytes(body);
        ledger.lock().unwrap().ack_sent.insert(n);
        if delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .is_err()
        {
            return;
        }
        if ch.basic_qos(50, BasicQosOptions::default()).await.is_err() {
            return;
        }
        ledger.lock().unwrap().acked.insert(n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_messages_survive_kill_9_and_acked_ones_do_not_return() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut next = 1u64;
    for round in 0..5u64 {
        let daemon = Daemon::start(dir.path()).await;
        let (_conn, ch) = daemon.connect().await;
        declare_durable(&ch).await;
        // What survived the previous kill: every confirmed message not known acked, none known
        // acked, in publish order, each marked redelivered.
        let present = take_all(&ch).await;
        {
            let mut l = ledger.lock().unwrap();
            let ids: Vec<u64> = present.iter().map(|(n, _)| *n).collect();
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "round {round}: out of order: {ids:?}"
            );
            let ids: BTreeSet<u64> = ids.into_iter().collect();
            let lost = l.lost(&ids);
            assert!(
                lost.is_empty(),
                "round {round}: confirmed messages lost: {lost:?}"
            );
            let back: Vec<_> = ids.intersection(&l.acked).collect();
            assert!(
                back.is_empty(),
                "round {round}: acked messages came back: {back:?}"
            );
            if round > 0 {
                assert!(present.iter().all(|(_, redelivered)| *redelivered));
            }
            l.ack_sent.extend(ids.iter().copied());
            l.acked.extend(ids);
        }
        let (_pconn, pch) = daemon.connect().await;
        let (_cconn, cch) = daemon.connect().await;
        let publisher = tokio::spawn(publish_until_killed(pch, next, Arc::clone(&ledger)));
        let consumer = tokio::spawn(consume_until_killed(cch, Arc::clone(&ledger)));
        // A different moment in each round.
        tokio::time::sleep(Duration::from_millis(150 + round * 97)).await;
        daemon.kill_9();
        let _ = tokio::time::timeout(WAIT, publisher).await;
        let _ = tokio::time::timeout(WAIT, consumer).await;
        next += 1_000_000;
        let confirmed = ledger.lock().unwrap().confirmed.len();
        assert!(confirmed > 0 || round == 0, "nothing was ever confirmed");
    }
    let daemon = Daemon::start(dir.path()).await;
    let (_conn, ch) = daemon.connect().await;
    declare_durable(&ch).await;
    let present: BTreeSet<u64> = take_all(&ch).await.into_iter().map(|(n, _)| n).collect();
    let l = ledger.lock().unwrap();
    assert!(l.confirmed.len() > 100, "too few messages to mean anything");
    let lost = l.lost(&present);
    assert!(
        lost.is_empty(),
        "confirmed messages lost after the last kill: {lost:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_connections_with_320_and_keeps_what_was_confirmed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start(dir.path()).await;
    let (conn, ch) = daemon.connect().await;
    declare_durable(&ch).await;
    within(
        "confirm.select-ok",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect("confirm.select");
    publish_confirmed(&ch, (0..100u64).map(|n| n.to_be_bytes().to_vec())).await;
    // A transient message and a non-durable queue: gone after the restart, as in RabbitMQ.
    ch.basic_publish(
        "".into(),
        QUEUE.into(),
        BasicPublishOptions::default(),
        &u64::MAX.to_be_bytes(),
        BasicProperties::default(),
    )
    .await
    .expect("basic.publish")
    .await
    .expect("confirm");
    within(
        "queue.declare-ok",
        ch.queue_declare(
            "transient-q".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("queue.declare");

    // An amqprs client sees the shutdown's connection.close.
    let args = amqprs::connection::OpenConnectionArguments::new(
        "127.0.0.1",
        daemon.port,
        "guest",
        "guest",
    );
    let watcher = within(
        "amqprs connection",
        amqprs::connection::Connection::open(&args),
    )
    .await
    .expect("amqprs connects");
    let (recorder, mut notices) = Recorder::new();
    watcher.register_callback(recorder).await.expect("callback");
    drop(conn);
    let status = daemon.terminate();
    assert!(status.success(), "rmqd exited with {status}");
    match next_notice(&mut notices).await {
        Notice::ConnectionClose(code, text) => {
            assert_eq!(
                (code, text.as_str()),
                (320, "CONNECTION_FORCED - broker shutdown")
            );
        }
        other => panic!("expected connection.close, got {other:?}"),
    }

    let daemon = Daemon::start(dir.path()).await;
    let (_conn, ch) = daemon.connect().await;
    declare_durable(&ch).await;
    let present: Vec<u64> = take_all(&ch).await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(present, (0..100).collect::<Vec<_>>());
    let missing = passive_declare(&ch, "transient-q").await;
    assert_eq!(
        missing.err().and_then(|e| amqp_error(&e)).map(|(c, _)| c),
        Some(404)
    );
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_use_stays_bounded_while_messages_are_consumed() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Small segments, so that reclaiming shows within a short test.
    let daemon = Daemon::start_with(dir.path(), &["--message-segment-size", "262144"]).await;
    let (_conn, ch) = daemon.connect().await;
    declare_durable(&ch).await;
    within(
        "confirm.select-ok",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect("confirm.select");
    let body = vec![7u8; 1024];
    let mut largest = 0;
    for round in 0..40 {
        publish_confirmed(&ch, (0..100).map(|_| body.clone())).await;
        let mut taken = 0;
        while let Some(message) = within(
            "basic.get",
            ch.basic_get(QUEUE.into(), BasicGetOptions::default()),
        )
        .await
        .expect("basic.get")
        {
            message
                .delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .expect("ack");
            taken += 1;
        }
        assert_eq!(taken, 100, "round {round}");
        barrier(&ch).await;
        largest = largest.max(dir_size(dir.path()));
    }
    // 4,000 KiB went through; what stays on disk is a few 256 KiB segments, not all of it.
    assert!(largest < 1_500_000, "the data dir grew to {largest} bytes");
    assert!(largest > 0);
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_longer_than_its_memory_limit_waits_on_disk_in_order() {
    const MESSAGES: u64 = 20_000;
    let dir = tempfile::tempdir().expect("temp dir");
    // 1 MiB in memory: almost all of 20,000 messages of 4,000 B (80 MB) wait on disk.
    let limits = ["--queue-memory-limit", "1048576"];
    let daemon = Daemon::start_with(dir.path(), &limits).await;
    let (_conn, ch) = daemon.connect().await;
    declare_durable(&ch).await;
    within(
        "confirm.select-ok",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect("confirm.select");
    let body = |n: u64| {
        let mut b = n.to_be_bytes().to_vec();
        b.resize(4000, (n % 251) as u8);
        b
    };
    for batch in 0..MESSAGES / 500 {
        publish_confirmed(&ch, (batch * 500..(batch + 1) * 500).map(body)).await;
    }
    let rss = rss_bytes(daemon.child.id());
    assert!(rss < 48 << 20, "80 MB queued took {rss} bytes of RSS");

    // A quarter now, read back from disk in order...
    let get = |ch: &Channel| {
        let ch = ch.clone();
        async move {
            within(
                "basic.get",
                ch.basic_get(QUEUE.into(), BasicGetOptions { no_ack: true }),
            )
            .await
            .expect("basic.get")
        }
    };
    for n in 0..MESSAGES / 4 {
        let message = get(&ch).await.expect("a message");
        assert_eq!(message.delivery.data, body(n), "message {n}");
    }
    barrier(&ch).await;
    drop(daemon);

    // ...and the rest after a crash, recovered mostly as references to disk.
    let daemon = Daemon::start_with(dir.path(), &limits).await;
    let (_conn, ch) = daemon.connect().await;
    declare_durable(&ch).await;
    let rss = rss_bytes(daemon.child.id());
    assert!(rss < 48 << 20, "recovering 60 MB took {rss} bytes of RSS");
    for n in MESSAGES / 4..MESSAGES {
        let message = get(&ch).await.expect("a message");
        assert_eq!(message.delivery.data, body(n), "message {n}");
        assert!(message.delivery.redelivered);
    }
    assert!(get(&ch).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topology_log_is_rewritten_to_what_exists() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start(dir.path()).await;
    let (_conn, ch) = daemon.connect().await;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    // History: 1,500 durable queues declared and deleted again.
    for n in 0..1500 {
        let name = format!("churn-{n}");
        ch.queue_declare(name.as_str().into(), durable, FieldTable::default())
            .await
            .expect("queue.declare");
        ch.queue_delete(name.as_str().into(), Default::default())
            .await
            .expect("queue.delete");
    }
    // What exists: a durable exchange bound to a durable queue, holding a message.
    let exchange_options = lapin::options::ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(
        "kept-x".into(),
        lapin::ExchangeKind::Topic,
        exchange_options,
        FieldTable::default(),
    )
    .await
    .expect("exchange.declare");
    declare_durable(&ch).await;
    ch.queue_bind(
        QUEUE.into(),
        "kept-x".into(),
        "a.#".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .expect("queue.bind");
    let before = dir_size(&dir.path().join("meta"));
    drop(daemon);

    let daemon = Daemon::start(dir.path()).await;
    let after = dir_size(&dir.path().join("meta"));
    assert!(
        after * 10 < before,
        "topology log {before} -> {after} bytes"
    );
    let (_conn, ch) = daemon.connect().await;
    within(
        "confirm.select-ok",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect("confirm.select");
    // The binding survived the rewrite, and so does a second restart on the rewritten log.
    let confirm = ch
        .basic_publish(
            "kept-x".into(),
            "a.b".into(),
            BasicPublishOptions::default(),
            &7u64.to_be_bytes(),
            persistent(),
        )
        .await
        .expect("basic.publish");
    assert!(confirm.await.expect("confirm").is_ack());
    drop(daemon);
    let daemon = Daemon::start(dir.path()).await;
    let (_conn, ch) = daemon.connect().await;
    declare_durable(&ch).await;
    let present: Vec<u64> = take_all(&ch).await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(present, vec![7]);
    let missing = passive_declare(&ch, "churn-0").await;
    assert_eq!(
        missing.err().and_then(|e| amqp_error(&e)).map(|(c, _)| c),
        Some(404)
    );
}

#[tokio::test]
async fn a_deleted_vhost_stays_deleted_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("rmqd.sock");
    let grant = r#"{"command":"set_permissions","vhost":"tenant","args":["guest",".*",".*",".*"]}"#;
    let daemon = Daemon::start(dir.path()).await;
    ctl_ok(&socket, r#"{"command":"add_vhost","args":["tenant"]}"#);
    ctl_ok(&socket, grant);
    let tenant_url = daemon.url_as("guest", "guest", "tenant");
    let conn = connect_url(&tenant_url)
        .await
        .expect("connects to the new vhost");
    let ch = open_channel(&conn).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    declare_durable(&ch).await;
    publish_confirmed(&ch, (0..3u64).map(|n| n.to_be_bytes().to_vec())).await;
    ctl_ok(&socket, r#"{"command":"delete_vhost","args":["tenant"]}"#);
    daemon.kill_9();

    let daemon = Daemon::start(dir.path()).await;
    let tenant_url = daemon.url_as("guest", "guest", "tenant");
    let refused = connect_url(&tenant_url)
        .await
        .expect_err("the vhost is gone");
    assert_eq!(amqp_error(&refused).map(|(code, _)| code), Some(530));
    // Recreated under the same name, it starts empty and without permissions.
    ctl_ok(&socket, r#"{"command":"add_vhost","args":["tenant"]}"#);
    let refused = connect_url(&tenant_url)
        .await
        .expect_err("no permissions carried over");
    assert_eq!(amqp_error(&refused).map(|(code, _)| code), Some(530));
    ctl_ok(&socket, grant);
    let conn = connect_url(&tenant_url).await.expect("connects");
    let ch = open_channel(&conn).await;
    let gone = passive_declare(&ch, QUEUE)
        .await
        .expect_err("the durable queue went with its vhost");
    assert_eq!(amqp_error(&gone).map(|(code, _)| code), Some(404));
}

#[tokio::test]
async fn users_permissions_and_policies_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("rmqd.sock");
    let daemon = Daemon::start(dir.path()).await;
    for request in [
        r#"{"command":"add_user","args":["alice","alice-secret"]}"#,
        r#"{"command":"set_permissions","args":["alice","^alice\\.",".*",".*"]}"#,
        r#"{"command":"add_user","args":["bob","bob-secret"]}"#,
        r#"{"command":"delete_user","args":["bob"]}"#,
        r#"{"command":"set_policy","args":["short-lived","^alice\\.tmp","{\"message-ttl\":100}"]}"#,
    ] {
        ctl_ok(&socket, request);
    }
    daemon.kill_9();

    let daemon = Daemon::start(dir.path()).await;
    let bob = daemon.url_as("bob", "bob-secret", "/");
    let refused = connect_url(&bob).await.expect_err("bob stays deleted");
    assert_eq!(amqp_error(&refused).map(|(code, _)| code), Some(403));

    let alice = daemon.url_as("alice", "alice-secret", "/");
    let conn = connect_url(&alice)
        .await
        .expect("alice logs in after the restart");
    let ch = open_channel(&conn).await;
    declare_queue(&ch, "alice.tmp.jobs").await;
    let denied = ch
        .queue_declare("jobs".into(), Default::default(), Default::default())
        .await;
    assert_closed_with(
        denied,
        403,
        "ACCESS_REFUSED - access to queue 'jobs' in vhost '/' refused for user 'alice'",
    );

    let ch = open_channel(&conn).await;
    publish(&ch, "", "alice.tmp.jobs", b"short-lived").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        get_body(&ch, "alice.tmp.jobs").await,
        None,
        "the policy came back and applies to a new queue"
    );
}
