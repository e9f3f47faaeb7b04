//! The binary as another language's test suite starts it: `rmqd --port 0 --ephemeral` prints
//! its URL once it accepts connections, stops when its stdin closes or its parent exits, and
//! takes vhost commands on its ctl socket. `rmqd ctl` itself is tested in `ctl.rs`.

mod common;

use std::io::{BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    WAIT, amqp_error, connect_url, ctl, ctl_ok, isolated, open_channel, passive_declare, port_of,
    rabbitmq_fixture, ready_line, rmqd_binary, rmqd_command, wait_exit, watched_url,
};

/// `rmqd --port 0 --ephemeral` on loopback, quiet.
fn ephemeral() -> Command {
    let mut command = rmqd_command();
    command
        .args(["--port", "0", "--ephemeral", "--bind", "127.0.0.1"])
        .args(["--log-level", "warn"]);
    command
}

/// [`ephemeral`] with piped stdin and stdout.
fn spawn(extra: &[&str]) -> Child {
    ephemeral()
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("rmqd starts")
}

#[tokio::test]
async fn prints_a_url_that_connects_and_stops_when_stdin_closes() {
    let mut child = spawn(&[]);
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let url = ready_line(&mut stdout).expect("one whole line");
    assert!(url.starts_with("amqp://guest:guest@127.0.0.1:"), "{url}");

    let conn = connect_url(&url).await.expect("the printed URL connects");
    open_channel(&conn).await;

    drop(child.stdin.take());
    let status = wait_exit(&mut child, "its stdin closed");
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read the rest");
    assert_eq!(rest, "", "stdout carries only the ready line");
}

#[test]
fn writes_the_ready_file_and_keeps_running_with_stdin_from_dev_null() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ready = dir.path().join("ready");
    let mut child = ephemeral()
        .arg("--ready-file")
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rmqd starts");
    let deadline = Instant::now() + WAIT;
    while !ready.exists() {
        assert!(Instant::now() < deadline, "no ready file");
        std::thread::sleep(Duration::from_millis(5));
    }
    let url = std::fs::read_to_string(&ready).expect("ready file");
    let port = port_of(&url);
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("listening when the file appears");

    // A daemon's stdin is /dev/null: that must not look like a starter going away.
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().expect("wait").is_none(), "rmqd exited");
    child.kill().expect("kill");
    child.wait().expect("reap");
}

#[test]
fn exits_with_its_parent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ready = dir.path().join("ready");
    // The parent shell starts rmqd in the background, says its pid, and exits a moment later.
    let script = format!(
        "'{}' --port 0 --ephemeral --bind 127.0.0.1 --exit-with-parent --ready-file '{}' \
         </dev/null >/dev/null 2>&1 & echo $!; sleep 0.5",
        rmqd_binary().display(),
        ready.display()
    );
    let parent = isolated("sh")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh starts");
    let out = parent.wait_with_output().expect("the parent exits");
    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the parent printed rmqd's pid");
    assert!(ready.exists(), "rmqd was running before its parent exited");
    let deadline = Instant::now() + WAIT;
    loop {
        // Gone, or a zombie waiting for a reaper that is not ours.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next());
        if stat.is_empty() || state == Some("Z") {
            break;
        }
        assert!(Instant::now() < deadline, "rmqd outlived its parent");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn ctl_socket_adds_and_deletes_vhosts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("ctl.sock");
    let mut child = spawn(&["--ctl-socket", socket.to_str().expect("utf-8 path")]);
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let url = ready_line(&mut stdout).expect("one whole line");
    let vhost_url = rmqd_broker::amqp_url("127.0.0.1", port_of(&url), "guest", "guest", "tenant-a");

    let refused = connect_url(&vhost_url)
        .await
        .expect_err("no such vhost yet");
    assert_eq!(amqp_error(&refused).map(|(code, _)| code), Some(530));

    ctl_ok(&socket, r#"{"command":"add_vhost","args":["tenant-a"]}"#);
    let denied = connect_url(&vhost_url)
        .await
        .expect_err("no permissions yet");
    assert_eq!(amqp_error(&denied).map(|(code, _)| code), Some(530));
    ctl_ok(
        &socket,
        r#"{"command":"set_permissions","vhost":"tenant-a","args":["guest",".*",".*",".*"]}"#,
    );
    let mut client = watched_url(&vhost_url).await;
    client.declare_queue("q").await;

    ctl_ok(&socket, r#"{"command":"delete_vhost","args":["tenant-a"]}"#);
    client
        .expect_connection_close(320, "CONNECTION_FORCED - vhost 'tenant-a' is deleted")
        .await;
    assert!(
        ctl(&socket, r#"{"command":"delete_vhost","args":["tenant-a"]}"#)
            .contains("does not exist")
    );

    drop(child.stdin.take());
    assert!(wait_exit(&mut child, "its stdin closed").success());
    assert!(!socket.exists(), "the socket file is removed on exit");
}

#[tokio::test]
async fn loads_a_rabbitmq_definitions_file_before_the_first_connection() {
    let fixture = rabbitmq_fixture();
    let mut child = spawn(&["--definitions", fixture.to_str().expect("utf-8 path")]);
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let url = ready_line(&mut stdout).expect("one whole line");
    let alice = rmqd_broker::amqp_url(
        "127.0.0.1",
        port_of(&url),
        "alice",
        "alice-secret",
        "orders",
    );

    // alice's password hash and her permissions on "orders" came from RabbitMQ's export.
    let conn = connect_url(&alice)
        .await
        .expect("alice logs in with the password she had on RabbitMQ");
    let ch = open_channel(&conn).await;
    passive_declare(&ch, "orders.created")
        .await
        .expect("the queue exists before any client declared it");

    drop(child.stdin.take());
    assert!(wait_exit(&mut child, "its stdin closed").success());
}

#[test]
fn refuses_to_start_with_a_broken_definitions_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("defs.json");
    std::fs::write(&broken, "{\"queues\": [}").expect("write");
    let out = ephemeral()
        .arg("--definitions")
        .arg(&broken)
        .stdin(Stdio::null())
        .output()
        .expect("rmqd runs");
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "never said it was ready"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot load definitions") && err.contains("line 1"),
        "{err}"
    );
}
