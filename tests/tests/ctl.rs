//! `rmqd ctl` as operators' scripts run it: the real binary as a subprocess against a real
//! `rmqd`, each command checked for its exact stdout, stderr and exit code as rabbitmqctl 3.10
//! prints them, with lapin and amqprs clients making queues, consumers, unacked messages and
//! connections for the listings to show.
//!
//! Listings of vhost-scoped things (queues, exchanges, bindings, consumers) share one broker,
//! a vhost per test; those of the whole broker (vhosts, users, connections, channels) and
//! definitions round trips get a broker each.

mod common;

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use amqprs::connection::{Connection as AConnection, OpenConnectionArguments};
use common::{
    Notice, Recorder, WAIT, confirm_channel, connect_url, consume, consume_acked, declare_exchange,
    declare_queue, get_body, next_notice, open_channel, port_of, publish, ready_line, rmqd_command,
    within,
};
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueBindOptions};
use lapin::types::{AMQPValue, FieldTable};
use rmqd_broker::admin::node_name;
use rmqd_broker::definitions::Definitions;

/// A running `rmqd --ephemeral` with its ctl socket in a temp dir. Stops when dropped, or
/// when the test process ends (its stdin closes).
struct Rmqd {
    child: Child,
    socket: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

/// What one `rmqd ctl` run printed and returned.
#[derive(Debug, PartialEq)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Rmqd {
    fn start() -> Rmqd {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("ctl.sock");
        let mut child = rmqd_command()
            .args(["--port", "0", "--ephemeral", "--bind", "127.0.0.1"])
            .args(["--log-level", "error", "--ctl-socket"])
            .arg(&socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("rmqd starts");
        let url = ready_line(&mut BufReader::new(child.stdout.take().expect("piped")))
            .expect("the ready line");
        let port = port_of(&url);
        Rmqd {
            child,
            socket,
            port,
            _dir: dir,
        }
    }

    /// `rmqd ctl ARGS`, the socket given as scripts give it: in `RMQD_CTL_SOCKET`.
    fn ctl(&self, args: &[&str]) -> Out {
        ctl_at(&self.socket, args, None)
    }

    /// [`Rmqd::ctl`] with `input` on stdin.
    fn ctl_with_input(&self, args: &[&str], input: &str) -> Out {
        ctl_at(&self.socket, args, Some(input))
    }

    /// Runs a command that must succeed, returning its stdout.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert_eq!(
            (out.code, out.stderr.as_str()),
            (Some(0), ""),
            "{args:?}: {out:?}"
        );
        out.stdout
    }

    fn url(&self, vhost: &str) -> String {
        rmqd_broker::amqp_url("127.0.0.1", self.port, "guest", "guest", vhost)
    }

    /// A new vhost guest may use.
    fn vhost(&self, name: &str) -> String {
        self.ok(&["add_vhost", name]);
        self.ok(&["set_permissions", "-p", name, "guest", ".*", ".*", ".*"]);
        name.to_string()
    }
}

impl Drop for Rmqd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ctl_at(socket: &Path, args: &[&str], input: Option<&str>) -> Out {
    let mut child = rmqd_command()
        .arg("ctl")
        .args(args)
        .env("RMQD_CTL_SOCKET", socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rmqd ctl runs");
    let mut stdin = child.stdin.take().expect("piped");
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).expect("stdin");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("rmqd ctl ends");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The broker vhost-scoped tests share.
fn shared() -> &'static Rmqd {
    static SHARED: OnceLock<Rmqd> = OnceLock::new();
    SHARED.get_or_init(Rmqd::start)
}

fn out(code: i32, stdout: &str, stderr: &str) -> Out {
    Out {
        code: Some(code),
        stdout: stdout.to_string(),
        stderr: stderr.to_string(),
    }
}

/// Runs `check` until it holds: what a client did without a reply (an ack) reaches the
/// listings soon, not at once.
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Without a daemon: arguments are checked first, as rabbitmqctl does.

#[test]
fn without_a_daemon_commands_fail_with_69_and_say_how_to_reach_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("ctl.sock");
    let out = ctl_at(&socket, &["list_vhosts"], None);
    assert_eq!((out.code, out.stdout.as_str()), (Some(69), ""));
    assert!(out.stderr.contains("Is rmqd running?"), "{}", out.stderr);
}

#[test]
fn wrong_arguments_are_refused_with_64_and_the_usage_before_any_daemon_is_asked() {
    let nowhere = Path::new("/nonexistent/ctl.sock");
    assert_eq!(
        ctl_at(nowhere, &["delete_queue"], None),
        out(
            64,
            "",
            "Error (argument validation): not enough arguments.\nArguments given:\n\tdelete_queue\n\n\
             Usage\n\nrmqd ctl [--quiet] delete_queue <queue_name> [--if-empty|-e] [--if-unused|-u]\n"
        )
    );
    assert_eq!(
        ctl_at(nowhere, &["list_users", "extra"], None).stderr,
        "Error (argument validation): too many arguments.\nArguments given:\n\tlist_users extra\n\n\
         Usage\n\nrmqd ctl [--quiet] list_users [--no-table-headers]\n"
    );
    let unknown_columns = ctl_at(nowhere, &["list_queues", "name", "bogus", "other"], None);
    assert_eq!(unknown_columns.code, Some(64));
    assert!(
        unknown_columns.stderr.starts_with(
            "Error (argument validation): Info key(s) bogus,other are not supported\n"
        ),
        "{}",
        unknown_columns.stderr
    );
    let bad_option = ctl_at(nowhere, &["list_queues", "--if-empty"], None);
    assert_eq!(bad_option.code, Some(64));
    assert!(
        bad_option.stderr.starts_with(
            "Error (argument validation): Invalid options for this command:\n--if-empty : \n"
        ),
        "{}",
        bad_option.stderr
    );
    let unknown = ctl_at(nowhere, &["bogus_cmd"], None);
    assert_eq!(unknown.code, Some(64));
    assert!(
        unknown
            .stdout
            .starts_with("\nCommand 'bogus_cmd' not found. \n"),
        "{}",
        unknown.stdout
    );
    let missing_file = ctl_at(
        nowhere,
        &["import_definitions", "/nonexistent/defs.json"],
        None,
    );
    assert_eq!(missing_file.code, Some(65));
    assert!(
        missing_file.stderr.starts_with(
            "Error (argument validation): Bad argument: File /nonexistent/defs.json does not exist\n"
        ),
        "{}",
        missing_file.stderr
    );
}

#[test]
fn help_lists_every_command_and_a_commands_columns() {
    let nowhere = Path::new("/nonexistent/ctl.sock");
    let help = ctl_at(nowhere, &["--help"], None);
    assert_eq!(help.code, Some(0));
    for command in rmqd_broker::admin::spec::commands() {
        assert!(
            help.stdout.contains(&format!("\n   {:<29} ", command.name)),
            "{} is listed",
            command.name
        );
    }
    let list_queues = ctl_at(nowhere, &["help", "list_queues"], None);
    assert_eq!(list_queues.code, Some(0));
    assert!(
        list_queues.stdout.contains(
            "must be one of name, type, durable, auto_delete, exclusive, arguments, owner_pid, \
             exclusive_consumer_tag, messages, messages_ready, messages_unacknowledged, \
             consumers, memory, state"
        ),
        "{}",
        list_queues.stdout
    );
    let no_command = ctl_at(nowhere, &[], None);
    assert_eq!(
        (no_command.code, no_command.stdout.as_str()),
        (Some(64), "")
    );
}

// ---------------------------------------------------------------------------------------------
// The node, vhosts, users and permissions.

#[test]
fn status_await_startup_and_ping_answer_once_the_daemon_runs() {
    let rmqd = shared();
    assert_eq!(rmqd.ctl(&["await_startup"]), out(0, "", ""));
    assert_eq!(
        rmqd.ctl(&["await_startup", "--formatter", "json"]).stdout,
        format!("{{\"node\":\"{}\",\"result\":\"ok\"}}\n", node_name())
    );
    let status = rmqd.ok(&["status"]);
    let lines: Vec<&str> = status.lines().collect();
    assert_eq!(lines[0], format!("Status of node {} ...", node_name()));
    assert_eq!(lines[1], "product\tversion\tnode\tconnections\tvhosts");
    assert!(lines[2].starts_with("rmqd\t"), "{status}");
    assert!(rmqd.ok(&["-q", "ping"]) == "Ping succeeded\n");
}

#[test]
fn await_startup_waits_for_a_daemon_that_is_still_starting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("ctl.sock");
    let waiting = {
        let socket = socket.clone();
        std::thread::spawn(move || ctl_at(&socket, &["await_startup", "-t", "10"], None))
    };
    std::thread::sleep(Duration::from_millis(200));
    let mut child = rmqd_command()
        .args([
            "--port",
            "0",
            "--ephemeral",
            "--bind",
            "127.0.0.1",
            "--log-level",
            "warn",
        ])
        .arg("--ctl-socket")
        .arg(&socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("rmqd starts");
    let awaited = waiting.join().expect("await_startup ran");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(awaited, out(0, "", ""));
}

#[test]
fn vhosts_are_added_listed_and_deleted() {
    let rmqd = Rmqd::start();
    assert_eq!(
        rmqd.ctl(&["add_vhost", "orders"]),
        out(0, "Adding vhost \"orders\" ...\n", "")
    );
    assert_eq!(
        rmqd.ctl(&["add_vhost", "orders"]),
        out(0, "Adding vhost \"orders\" ...\n", ""),
        "adding one that exists is no error in RabbitMQ 3.10"
    );
    assert_eq!(
        rmqd.ctl(&["list_vhosts"]),
        out(0, "Listing vhosts ...\nname\n/\norders\n", "")
    );
    assert_eq!(
        rmqd.ok(&[
            "list_vhosts",
            "name",
            "tracing",
            "tags",
            "description",
            "cluster_state"
        ]),
        format!(
            "Listing vhosts ...\nname\ttracing\ttags\tdescription\tcluster_state\n\
             /\tfalse\t[]\t\t[{{{node}, running}}]\norders\tfalse\t[]\t\t[{{{node}, running}}]\n",
            node = node_name()
        )
    );
    assert_eq!(rmqd.ok(&["-s", "list_vhosts"]), "/\norders\n");
    assert_eq!(
        rmqd.ok(&["--formatter", "json", "list_vhosts"]),
        "[\n{\"name\":\"/\"}\n,{\"name\":\"orders\"}\n]\n"
    );
    assert_eq!(
        rmqd.ctl(&["delete_vhost", "orders"]),
        out(0, "Deleting vhost \"orders\" ...\n", "")
    );
    assert_eq!(
        rmqd.ctl(&["delete_vhost", "orders"]),
        out(
            65,
            "Deleting vhost \"orders\" ...\n",
            "Virtual host 'orders' does not exist\n"
        )
    );
}

#[test]
fn users_are_added_tagged_authenticated_and_deleted() {
    let rmqd = Rmqd::start();
    assert_eq!(
        rmqd.ctl(&["add_user", "alice", "s3cret"]),
        out(
            0,
            "Adding user \"alice\" ...\nDone. Don't forget to grant the user permissions to some \
             virtual hosts! See 'rmqd ctl help set_permissions' to learn more.\n",
            ""
        )
    );
    assert_eq!(
        rmqd.ctl(&["add_user", "alice", "other"]),
        out(
            70,
            "Adding user \"alice\" ...\n",
            "Error:\nUser \"alice\" already exists\n"
        )
    );
    assert_eq!(rmqd.ok(&["-q", "add_user", "bob", "pw"]), "");
    assert_eq!(
        rmqd.ctl(&["set_user_tags", "alice", "monitoring", "management"]),
        out(
            0,
            "Setting tags for user \"alice\" to [monitoring, management] ...\n",
            ""
        )
    );
    assert_eq!(
        rmqd.ok(&["list_users"]),
        "Listing users ...\nuser\ttags\nalice\t[monitoring, management]\nbob\t[]\nguest\t[administrator]\n"
    );
    assert_eq!(
        rmqd.ok(&["list_users", "--formatter", "json"]),
        "[\n{\"user\":\"alice\",\"tags\":[\"monitoring\",\"management\"]}\n\
         ,{\"user\":\"bob\",\"tags\":[]}\n,{\"user\":\"guest\",\"tags\":[\"administrator\"]}\n]\n"
    );
    assert_eq!(
        rmqd.ctl(&["authenticate_user", "alice", "s3cret"]),
        out(0, "Authenticating user \"alice\" ...\nSuccess\n", "")
    );
    assert_eq!(
        rmqd.ctl(&["change_password", "alice", "n3w"]),
        out(0, "Changing password for user \"alice\" ...\n", "")
    );
    assert_eq!(
        rmqd.ctl(&["authenticate_user", "alice", "s3cret"]),
        out(
            65,
            "Authenticating user \"alice\" ...\n",
            "Error:\nError: failed to authenticate user \"alice\"\nuser 'alice' - invalid credentials\n"
        )
    );
    assert_eq!(
        rmqd.ok(&["-q", "authenticate_user", "alice", "n3w"]),
        "Success\n"
    );
    assert_eq!(
        rmqd.ctl(&["delete_user", "bob"]),
        out(0, "Deleting user \"bob\" ...\n", "")
    );
    for (args, banner) in [
        (vec!["delete_user", "bob"], "Deleting user \"bob\" ..."),
        (
            vec!["change_password", "bob", "x"],
            "Changing password for user \"bob\" ...",
        ),
        (
            vec!["set_user_tags", "bob", "x"],
            "Setting tags for user \"bob\" to [x] ...",
        ),
    ] {
        assert_eq!(
            rmqd.ctl(&args),
            out(
                67,
                &format!("{banner}\n"),
                "Error:\nUser \"bob\" does not exist\n"
            ),
            "{args:?}"
        );
    }
}

#[test]
fn permissions_are_set_listed_and_cleared() {
    let rmqd = Rmqd::start();
    rmqd.ok(&["add_vhost", "orders"]);
    rmqd.ok(&["add_user", "alice", "pw"]);
    assert_eq!(
        rmqd.ctl(&[
            "set_permissions",
            "-p",
            "orders",
            "alice",
            "^orders\\..*",
            "orders",
            ""
        ]),
        out(
            0,
            "Setting permissions for user \"alice\" in vhost \"orders\" ...\n",
            ""
        )
    );
    rmqd.ok(&["set_permissions", "alice", ".*", ".*", ".*"]);
    assert_eq!(
        rmqd.ok(&["list_permissions", "-p", "orders"]),
        "Listing permissions for vhost \"orders\" ...\nuser\tconfigure\twrite\tread\n\
         alice\t^orders\\..*\torders\t\n"
    );
    assert_eq!(
        rmqd.ok(&["list_permissions", "--formatter", "json"]),
        "[\n{\"user\":\"alice\",\"configure\":\".*\",\"write\":\".*\",\"read\":\".*\"}\n\
         ,{\"user\":\"guest\",\"configure\":\".*\",\"write\":\".*\",\"read\":\".*\"}\n]\n"
    );
    assert_eq!(
        rmqd.ok(&["list_user_permissions", "alice"]),
        "Listing permissions for user \"alice\" ...\nvhost\tconfigure\twrite\tread\n\
         /\t.*\t.*\t.*\norders\t^orders\\..*\torders\t\n"
    );
    assert_eq!(
        rmqd.ctl(&["clear_permissions", "-p", "orders", "alice"]),
        out(
            0,
            "Clearing permissions for user \"alice\" in vhost \"orders\" ...\n",
            ""
        )
    );
    assert_eq!(
        rmqd.ok(&["-q", "list_user_permissions", "alice"]),
        "vhost\tconfigure\twrite\tread\n/\t.*\t.*\t.*\n"
    );
    assert_eq!(
        rmqd.ctl(&["set_permissions", "-p", "nowhere", "alice", "a", "b", "c"]),
        out(
            69,
            "Setting permissions for user \"alice\" in vhost \"nowhere\" ...\n",
            "Error:\nVirtual host nowhere does not exist\n"
        )
    );
    assert_eq!(
        rmqd.ctl(&["clear_permissions", "ghost"]),
        out(
            67,
            "Clearing permissions for user \"ghost\" in vhost \"/\" ...\n",
            "Error:\nUser ghost does not exist\n"
        )
    );
    assert_eq!(
        rmqd.ctl(&["list_permissions", "-p", "nowhere"]),
        out(
            65,
            "Listing permissions for vhost \"nowhere\" ...\n",
            "Virtual host 'nowhere' does not exist\n"
        )
    );
    assert_eq!(
        rmqd.ctl(&["list_user_permissions", "ghost"]),
        out(
            69,
            "Listing permissions for user \"ghost\" ...\n",
            "Error:\n{:no_such_user, \"ghost\"}\n"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Queues, exchanges, bindings and consumers of one vhost.

#[tokio::test(flavor = "multi_thread")]
async fn queues_are_listed_with_their_counts_and_arguments() {
    let rmqd = shared();
    let vhost = rmqd.vhost("listing-queues");
    let conn = connect_url(&rmqd.url(&vhost)).await.expect("connects");
    let ch = confirm_channel(&conn).await;
    declare_queue(&ch, "jobs").await;
    // lapin sends a field table sorted by key; the listing keeps the order it came in.
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongInt(10));
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("dlx".into()),
    );
    within(
        "queue.declare-ok",
        ch.queue_declare(
            "capped".into(),
            lapin::options::QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            arguments,
        ),
    )
    .await
    .expect("declared");
    for _ in 0..5 {
        publish(&ch, "", "jobs", b"job").await;
    }
    publish(&ch, "", "capped", b"x").await;
    let consumer_channel = open_channel(&conn).await;
    consumer_channel
        .basic_qos(2, BasicQosOptions::default())
        .await
        .expect("basic.qos");
    let mut consumer = consume_acked(&consumer_channel, "jobs", "worker").await;
    consumer.take(2).await;

    assert_eq!(
        rmqd.ctl(&["list_queues", "-p", &vhost]),
        out(
            0,
            "Timeout: 60.0 seconds ...\nListing queues for vhost listing-queues ...\n\
             name\tmessages\ncapped\t1\njobs\t5\n",
            ""
        )
    );
    assert_eq!(
        rmqd.ok(&[
            "list_queues",
            "-p",
            &vhost,
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "consumers",
            "durable",
            "auto_delete",
            "exclusive",
            "arguments",
            "state",
            "type",
        ]),
        "Timeout: 60.0 seconds ...\nListing queues for vhost listing-queues ...\n\
         name\tmessages_ready\tmessages_unacknowledged\tconsumers\tdurable\tauto_delete\texclusive\targuments\tstate\ttype\n\
         capped\t1\t0\t0\ttrue\tfalse\tfalse\t[{\"x-dead-letter-exchange\",\"dlx\"},{\"x-max-length\",10}]\trunning\tclassic\n\
         jobs\t3\t2\t1\tfalse\tfalse\tfalse\t[]\trunning\tclassic\n"
    );
    assert_eq!(
        rmqd.ok(&[
            "list_queues",
            "-p",
            &vhost,
            "--formatter",
            "json",
            "name",
            "arguments"
        ]),
        "[\n{\"name\":\"capped\",\"arguments\":[[\"x-dead-letter-exchange\",\"longstr\",\"dlx\"],\
         [\"x-max-length\",\"signedint\",10]]}\n,{\"name\":\"jobs\",\"arguments\":[]}\n]\n"
    );
    let memory = rmqd.ok(&["-s", "list_queues", "-p", &vhost, "name,memory"]);
    let rows: Vec<(&str, u64)> = memory
        .lines()
        .map(|line| {
            line.split_once('\t')
                .and_then(|(name, bytes)| Some((name, bytes.parse().ok()?)))
                .unwrap_or_else(|| panic!("not <name>\\t<bytes>: {line:?}"))
        })
        .collect();
    assert_eq!(
        rows.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        ["capped", "jobs"],
        "comma-separated columns, no banner or header: {memory:?}"
    );
    assert_eq!(
        rmqd.ok(&["list_queues", "-p", "no-such-vhost"]),
        "Timeout: 60.0 seconds ...\nListing queues for vhost no-such-vhost ...\n",
        "no rows, no header"
    );
    drop(conn);
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_and_delete_queue_report_as_rabbitmqctl_does() {
    let rmqd = shared();
    let vhost = rmqd.vhost("purging");
    let conn = connect_url(&rmqd.url(&vhost)).await.expect("connects");
    let ch = confirm_channel(&conn).await;
    for queue in ["full", "busy", "idle"] {
        declare_queue(&ch, queue).await;
    }
    for _ in 0..3 {
        publish(&ch, "", "full", b"m").await;
    }
    let consumer_channel = open_channel(&conn).await;
    let mut consumer = consume_acked(&consumer_channel, "busy", "c").await;

    assert_eq!(
        rmqd.ctl(&["delete_queue", "-p", &vhost, "full", "--if-empty"]),
        out(
            64,
            "Deleting queue 'full' on vhost 'purging' if queue is empty ...\n",
            "Error:\nQueue is not empty\n"
        )
    );
    assert_eq!(
        rmqd.ctl(&["purge_queue", "-p", &vhost, "full"]),
        out(0, "Purging queue 'full' in vhost 'purging' ...\n", "")
    );
    assert_eq!(
        rmqd.ctl(&["delete_queue", "-p", &vhost, "full", "-e"]),
        out(
            0,
            "Deleting queue 'full' on vhost 'purging' if queue is empty ...\n\
             Queue was successfully deleted with 0 ready messages\n",
            ""
        )
    );
    assert_eq!(
        rmqd.ctl(&["delete_queue", "-p", &vhost, "busy", "--if-unused"]),
        out(
            64,
            "Deleting queue 'busy' on vhost 'purging' if queue is unused ...\n",
            "Error:\nQueue is in use\n"
        )
    );
    assert_eq!(
        rmqd.ctl(&["-q", "delete_queue", "-p", &vhost, "busy"]),
        out(
            0,
            "Queue was successfully deleted with 0 ready messages\n",
            ""
        )
    );
    consumer.cancelled().await;
    assert_eq!(
        rmqd.ctl(&["delete_queue", "-p", &vhost, "idle", "--formatter", "json"]),
        out(
            0,
            "{\"message\":\"Queue was successfully deleted with 0 ready messages\"}\n",
            ""
        )
    );
    assert_eq!(
        rmqd.ctl(&["delete_queue", "-p", &vhost, "idle"]),
        out(
            64,
            "Deleting queue 'idle' on vhost 'purging' ...\n",
            "Error:\nQueue not found\n"
        )
    );
    assert_eq!(
        rmqd.ctl(&["purge_queue", "-p", &vhost, "idle"]),
        out(
            69,
            "Purging queue 'idle' in vhost 'purging' ...\n",
            "Error:\nnot_found\n"
        )
    );
    assert_eq!(
        rmqd.ok(&["-q", "list_queues", "-p", &vhost]),
        "",
        "every queue is gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exchanges_and_bindings_are_listed_with_the_default_exchanges_bindings() {
    let rmqd = shared();
    let vhost = rmqd.vhost("listing-bindings");
    let conn = connect_url(&rmqd.url(&vhost)).await.expect("connects");
    let ch = open_channel(&conn).await;
    declare_exchange(&ch, "logs", lapin::ExchangeKind::Topic).await;
    declare_exchange(&ch, "matched", lapin::ExchangeKind::Headers).await;
    declare_queue(&ch, "errors").await;
    common::bind(&ch, "errors", "logs", "*.error").await;
    let mut match_all = FieldTable::default();
    match_all.insert("x-match".into(), AMQPValue::LongString("all".into()));
    match_all.insert("level".into(), AMQPValue::LongString("error".into()));
    within(
        "queue.bind-ok",
        ch.queue_bind(
            "errors".into(),
            "matched".into(),
            "".into(),
            QueueBindOptions::default(),
            match_all,
        ),
    )
    .await
    .expect("bound");
    within(
        "exchange.bind-ok",
        ch.exchange_bind(
            "matched".into(),
            "logs".into(),
            "#".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("bound");

    assert_eq!(
        rmqd.ok(&["list_exchanges", "-p", &vhost]),
        "Listing exchanges for vhost listing-bindings ...\nname\ttype\n\tdirect\n\
         amq.direct\tdirect\namq.fanout\tfanout\namq.headers\theaders\namq.match\theaders\n\
         amq.topic\ttopic\nlogs\ttopic\nmatched\theaders\n"
    );
    assert_eq!(
        rmqd.ok(&[
            "-q",
            "list_exchanges",
            "-p",
            &vhost,
            "name",
            "durable",
            "auto_delete",
            "internal",
            "arguments"
        ])
        .lines()
        .find(|l| l.starts_with("logs\t")),
        Some("logs\tfalse\tfalse\tfalse\t[]")
    );
    // Binding arguments sorted by key, as RabbitMQ keeps them.
    assert_eq!(
        rmqd.ok(&["list_bindings", "-p", &vhost]),
        "Listing bindings for vhost listing-bindings...\n\
         source_name\tsource_kind\tdestination_name\tdestination_kind\trouting_key\targuments\n\
         \texchange\terrors\tqueue\terrors\t[]\n\
         logs\texchange\terrors\tqueue\t*.error\t[]\n\
         logs\texchange\tmatched\texchange\t#\t[]\n\
         matched\texchange\terrors\tqueue\t\t[{\"level\",\"error\"},{\"x-match\",\"all\"}]\n"
    );
    assert_eq!(
        rmqd.ok(&[
            "list_bindings",
            "-p",
            &vhost,
            "--formatter",
            "json",
            "source_name",
            "arguments"
        ]),
        "[\n{\"source_name\":\"\",\"arguments\":[]}\n\
         ,{\"source_name\":\"logs\",\"arguments\":[]}\n\
         ,{\"source_name\":\"logs\",\"arguments\":[]}\n\
         ,{\"source_name\":\"matched\",\"arguments\":\
         [[\"level\",\"longstr\",\"error\"],[\"x-match\",\"longstr\",\"all\"]]}\n]\n"
    );
    drop(conn);
}

#[tokio::test(flavor = "multi_thread")]
async fn consumers_are_listed_with_their_channel_and_prefetch() {
    let rmqd = shared();
    let vhost = rmqd.vhost("listing-consumers");
    let conn = connect_url(&rmqd.url(&vhost)).await.expect("connects");
    let ch = open_channel(&conn).await;
    declare_queue(&ch, "tasks").await;
    ch.basic_qos(5, BasicQosOptions::default())
        .await
        .expect("basic.qos");
    let _acking = consume_acked(&ch, "tasks", "acking").await;
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    let _auto = consume(&ch, "tasks", "auto", no_ack)
        .await
        .expect("consume");

    let channel_pid = rmqd
        .ok(&["-q", "list_channels", "pid", "vhost"])
        .lines()
        .find_map(|l| l.strip_suffix("\tlisting-consumers").map(String::from))
        .expect("the channel is listed");
    assert_eq!(
        rmqd.ok(&["list_consumers", "-p", &vhost]),
        format!(
            "Listing consumers in vhost listing-consumers ...\n\
             queue_name\tchannel_pid\tconsumer_tag\tack_required\tprefetch_count\tactive\targuments\n\
             tasks\t{channel_pid}\tacking\ttrue\t5\ttrue\t[]\n\
             tasks\t{channel_pid}\tauto\tfalse\t5\ttrue\t[]\n"
        )
    );
    assert_eq!(
        rmqd.ok(&[
            "-q",
            "list_consumers",
            "-p",
            &vhost,
            "activity_status",
            "consumer_tag"
        ]),
        "consumer_tag\tactivity_status\nacking\tup\nauto\tup\n",
        "in rabbitmqctl's column order, whatever order they are asked in"
    );
    drop(conn);
}

// ---------------------------------------------------------------------------------------------
// Connections and channels of the whole broker.

#[tokio::test(flavor = "multi_thread")]
async fn connections_and_channels_are_listed_and_closed_by_pid() {
    let rmqd = Rmqd::start();
    let mut args = OpenConnectionArguments::new("127.0.0.1", rmqd.port, "guest", "guest");
    args.connection_name("ctl-test");
    let conn = within("amqprs connection", AConnection::open(&args))
        .await
        .expect("amqprs connects");
    let (recorder, mut notices) = Recorder::new();
    conn.register_callback(recorder).await.expect("callback");
    let lapin_conn = connect_url(&rmqd.url("/")).await.expect("lapin connects");
    let ch = confirm_channel(&lapin_conn).await;
    declare_queue(&ch, "q").await;
    for _ in 0..3 {
        publish(&ch, "", "q", b"m").await;
    }
    let consuming = open_channel(&lapin_conn).await;
    let mut consumer = consume_acked(&consuming, "q", "c").await;
    let deliveries = consumer.take(3).await;
    let _amqprs_channel = conn.open_channel(None).await.expect("channel");

    let listed = rmqd.ok(&["list_connections"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "Listing connections ...",
            "user\tpeer_host\tpeer_port\tstate"
        ]
    );
    assert_eq!(lines.len(), 4, "{listed}");
    for line in &lines[2..] {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            (fields[0], fields[1], fields[3]),
            ("guest", "127.0.0.1", "running")
        );
        assert!(fields[2].parse::<u16>().is_ok(), "{line}");
    }
    let details = rmqd.ok(&[
        "-q",
        "list_connections",
        "user",
        "vhost",
        "channels",
        "auth_mechanism",
        "protocol",
        "ssl",
        "frame_max",
        "channel_max",
        "port",
        "client_properties",
    ]);
    let amqprs_line = details
        .lines()
        .find(|l| l.contains("{\"connection_name\",\"ctl-test\"}"))
        .unwrap_or_else(|| panic!("amqprs's client properties: {details}"));
    assert!(
        amqprs_line.starts_with(&format!(
            "guest\t/\t1\tPLAIN\t{{0,9,1}}\tfalse\t131072\t2047\t{}\t[",
            rmqd.port
        )),
        "{amqprs_line}"
    );

    let channels = rmqd.ok(&[
        "-q",
        "list_channels",
        "number",
        "consumer_count",
        "messages_unacknowledged",
        "confirm",
        "prefetch_count",
    ]);
    let mut rows: Vec<&str> = channels.lines().skip(1).collect();
    rows.sort();
    assert_eq!(
        rows,
        ["1\t0\t0\tfalse\t0", "1\t0\t0\ttrue\t0", "2\t1\t3\tfalse\t0"],
        "amqprs's channel, lapin's confirm channel and its consuming one"
    );
    for delivery in deliveries {
        delivery.ack(Default::default()).await.expect("ack");
    }
    eventually("the acks reaching list_channels", || {
        rmqd.ok(&["-q", "list_channels", "messages_unacknowledged"])
            == "messages_unacknowledged\n0\n0\n0\n"
    });

    let name = rmqd
        .ok(&["-q", "list_connections", "pid", "client_properties"])
        .lines()
        .find(|l| l.contains("ctl-test"))
        .and_then(|l| l.split('\t').next().map(String::from))
        .expect("the amqprs connection's pid");
    assert_eq!(
        rmqd.ctl(&["close_connection", &name, "maintenance window"]),
        out(
            0,
            &format!("Closing connection {name}, reason: maintenance window...\n"),
            ""
        )
    );
    match next_notice(&mut notices).await {
        Notice::ConnectionClose(code, text) => assert_eq!(
            (code, text.as_str()),
            (320, "CONNECTION_FORCED - maintenance window")
        ),
        other => panic!("expected connection.close, got {other:?}"),
    }
    eventually("the closed connection leaving the listing", || {
        rmqd.ok(&["-s", "list_connections"]).lines().count() == 1
    });
    assert_eq!(
        rmqd.ctl(&["close_connection", &name, "again"]),
        out(
            0,
            &format!("Closing connection {name}, reason: again...\n"),
            ""
        ),
        "a pid that names no live connection is no error"
    );
    assert_eq!(
        rmqd.ctl(&["close_connection", "garbage", "x"]),
        out(
            69,
            "Closing connection garbage, reason: x...\n",
            "Error:\nError:\n{:invalid_pid_syntax, \"garbage\"}\n"
        )
    );
    drop(lapin_conn);
}

// ---------------------------------------------------------------------------------------------
// Definitions.

#[tokio::test(flavor = "multi_thread")]
async fn definitions_exported_to_a_file_import_back_after_deletion() {
    let rmqd = Rmqd::start();
    let vhost = rmqd.vhost("orders");
    rmqd.ok(&["add_user", "alice", "pw"]);
    let conn = connect_url(&rmqd.url(&vhost)).await.expect("connects");
    let ch = open_channel(&conn).await;
    within(
        "queue.declare-ok",
        ch.queue_declare(
            "orders.created".into(),
            lapin::options::QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("declared");
    drop(conn);

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("defs.json");
    let path = file.to_str().expect("utf-8 path");
    assert_eq!(
        rmqd.ctl(&["export_definitions", path]),
        out(
            0,
            &format!("Exporting definitions in JSON to a file at \"{path}\" ...\n"),
            ""
        )
    );
    let written = std::fs::read_to_string(&file).expect("the file");
    assert!(
        !written.contains('\n'),
        "one line, as rabbitmqctl writes it"
    );
    let exported = Definitions::from_json(&written).expect("a definitions file");
    assert_eq!(exported.queues[0].name, "orders.created");
    assert_eq!(
        rmqd.ctl(&["export_definitions", "-"]),
        out(0, &written, ""),
        "to stdout, without banner or newline"
    );

    rmqd.ok(&["delete_vhost", "orders"]);
    rmqd.ok(&["delete_user", "alice"]);
    assert_eq!(
        rmqd.ctl(&["import_definitions", path]),
        out(
            0,
            &format!(
                "Importing definitions in JSON from a file at \"{path}\" ...\n\
                 Successfully started definition import. This process is asynchronous and can \
                 take some time.\n"
            ),
            ""
        )
    );
    assert_eq!(
        rmqd.ok(&["-q", "list_queues", "-p", "orders", "name", "durable"]),
        "name\tdurable\norders.created\ttrue\n"
    );
    assert_eq!(
        rmqd.ok(&["-q", "authenticate_user", "alice", "pw"]),
        "Success\n"
    );
    assert_eq!(
        rmqd.ctl_with_input(&["import_definitions", "--formatter", "json"], &written),
        out(
            0,
            &format!("{{\"node\":\"{}\",\"result\":\"ok\"}}\n", node_name()),
            ""
        ),
        "from stdin, again: nothing changes"
    );
    let bad = rmqd.ctl_with_input(&["import_definitions", "-"], "{\"vhosts\": [");
    assert_eq!(
        (bad.code, bad.stdout.as_str()),
        (
            Some(65),
            "Importing definitions in JSON from standard input ...\n"
        )
    );
    assert!(
        bad.stderr
            .starts_with("Error:\nFailed to deserialise input (format: JSON) (error: "),
        "{}",
        bad.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Policies

#[tokio::test]
async fn policies_are_set_listed_applied_and_cleared() {
    let rmqd = shared();
    let vhost = rmqd.vhost("policies");
    assert_eq!(
        rmqd.ctl(&[
            "set_policy",
            "-p",
            &vhost,
            "--apply-to",
            "queues",
            "--priority",
            "1",
            "short-lived",
            "^tmp\\.",
            r#"{"message-ttl":100}"#,
        ]),
        out(
            0,
            "Setting policy \"short-lived\" for pattern \"^tmp\\.\" to \"{\"message-ttl\":100}\" \
             with priority \"1\" for vhost \"policies\" ...\n",
            ""
        )
    );
    assert_eq!(
        rmqd.ok(&["list_policies", "-p", &vhost]),
        "Listing policies for vhost \"policies\" ...\n\
         vhost\tname\tpattern\tapply-to\tdefinition\tpriority\n\
         policies\tshort-lived\t^tmp\\.\tqueues\t{\"message-ttl\":100}\t1\n"
    );

    let conn = connect_url(&rmqd.url(&vhost)).await.expect("connects");
    let ch = open_channel(&conn).await;
    declare_queue(&ch, "tmp.jobs").await;
    declare_queue(&ch, "jobs").await;
    assert_eq!(
        rmqd.ok(&["list_queues", "-p", &vhost, "-q", "name", "policy"]),
        "name\tpolicy\njobs\t\ntmp.jobs\tshort-lived\n"
    );
    publish(&ch, "", "tmp.jobs", b"gone soon").await;
    publish(&ch, "", "jobs", b"stays").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        get_body(&ch, "tmp.jobs").await,
        None,
        "the policy's TTL applies"
    );
    assert_eq!(get_body(&ch, "jobs").await.as_deref(), Some(&b"stays"[..]));

    assert_eq!(
        rmqd.ctl(&["clear_policy", "-p", &vhost, "short-lived"]),
        out(
            0,
            "Clearing policy \"short-lived\" on vhost \"policies\" ...\n",
            ""
        )
    );
    publish(&ch, "", "tmp.jobs", b"kept now").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        get_body(&ch, "tmp.jobs").await.as_deref(),
        Some(&b"kept now"[..]),
        "clearing the policy lifts its TTL from the existing queue"
    );
    assert_eq!(
        rmqd.ctl(&["clear_policy", "-p", &vhost, "short-lived"]),
        out(
            69,
            "Clearing policy \"short-lived\" on vhost \"policies\" ...\n",
            "Error:\nParameter does not exist\n"
        )
    );
}

#[test]
fn invalid_policies_are_refused_as_rabbitmqctl_refuses_them() {
    let rmqd = shared();
    let refused = rmqd.ctl(&["set_policy", "-q", "p", "^x", r#"{"foo":1}"#]);
    assert_eq!(
        refused,
        out(
            69,
            "",
            "Error:\nValidation failed\n\n[{<<\"foo\">>,1}] are not recognised policy settings\n"
        )
    );
    let refused = rmqd.ctl(&["set_policy", "-q", "p", "^x", r#"{"message-ttl":"a"}"#]);
    assert_eq!(
        refused.stderr,
        "Error:\nValidation failed\n\n<<\"a\">> is not a valid message TTL\n"
    );
    let refused = rmqd.ctl(&["set_policy", "-q", "p", "(", r#"{"message-ttl":1}"#]);
    assert_eq!(refused.code, Some(69));
    assert!(
        refused
            .stderr
            .starts_with("Error:\nValidation failed\n\npattern should be regular expression"),
        "{refused:?}"
    );
    let refused = rmqd.ctl(&["set_policy", "-q", "-p", "nowhere", "p", "^x", "{}"]);
    assert_eq!(
        refused,
        out(65, "", "Virtual host 'nowhere' does not exist\n")
    );
}
