//! The binary configured as RabbitMQ is: a rabbitmq.conf-style file given with `--config`,
//! `RMQD_*` environment variables over it, flags over both, and start refused on a bad file.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::raw::Raw;
use common::{WAIT, connect_url, exited_within, open_channel, port_of, ready_line, rmqd_command};
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection};

/// A running rmqd with piped stdio; its stderr is collected as it comes.
struct Daemon {
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    fn start(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut child = rmqd_command()
            .arg("--config")
            .arg(config)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rmqd starts");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut stderr = child.stderr.take().expect("piped");
        let collected = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&collected);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut chunk) {
                sink.lock()
                    .expect("stderr buffer")
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Daemon {
            child,
            stdout,
            stderr: collected,
        }
    }

    /// The URL line rmqd prints once it listens.
    fn ready_line(&mut self) -> String {
        ready_line(&mut self.stdout)
            .unwrap_or_else(|| panic!("no ready line; stderr: {}", self.stderr()))
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// What rmqd has logged once it has logged `text`: a thread collects stderr, so what it
    /// wrote before the ready line may not have been read yet. Fails the test after [`WAIT`].
    fn stderr_once_it_says(&self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let stderr = self.stderr();
            if stderr.contains(text) {
                return stderr;
            }
            assert!(
                Instant::now() < deadline,
                "rmqd never logged {text:?}: {stderr}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Closing stdin stops it; kill in case the test failed before that mattered.
        drop(self.child.stdin.take());
        exited_within(&mut self.child, WAIT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("rmqd.conf");
    let mut file = std::fs::File::create(&path).expect("create the config file");
    file.write_all(text.as_bytes())
        .expect("write the config file");
    path
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind a probe");
    probe.local_addr().expect("probe address").port()
}

#[tokio::test]
async fn the_file_sets_the_listener_and_the_default_user_and_ctl_finds_its_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let socket = dir.path().join("ctl.sock");
    let config = write_config(
        dir.path(),
        &format!(
            "# as in rabbitmq.conf\nlisteners.tcp.default = 127.0.0.1:{port}\n\n\
             default_user = admin\ndefault_pass = s3cret\n\
             log.level = info\nctl_socket = {}\n",
            socket.display()
        ),
    );
    let mut daemon = Daemon::start(&config, &["--ephemeral"], &[]);
    let url = daemon.ready_line();
    assert_eq!(
        url,
        format!("amqp://admin@127.0.0.1:{port}"),
        "a password from the file is not printed"
    );
    let banner = daemon.stderr_once_it_says("listening for AMQP");
    assert!(
        banner.contains(&format!("config file: {}", config.display())),
        "{banner}"
    );
    assert!(!banner.contains("s3cret"), "no password in the logs");

    let conn = connect_url(&format!("amqp://admin:s3cret@127.0.0.1:{port}"))
        .await
        .expect("the file's user logs in on the file's port");
    open_channel(&conn).await;
    connect_url(&format!("amqp://guest:guest@127.0.0.1:{port}"))
        .await
        .expect_err("guest is not created when default_user names another");

    // `rmqd ctl` reads the same file to find the daemon.
    let listed = rmqd_command()
        .args(["ctl", "list_vhosts"])
        .env("RMQD_CONFIG_FILE", &config)
        .output()
        .expect("rmqd ctl runs");
    assert!(listed.status.success(), "{listed:?}");
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        "Listing vhosts ...\nname\n/\n"
    );
}

#[tokio::test]
async fn the_environment_overrides_the_file_and_flags_override_both() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Held, so that rmqd could not start if the file's port were used.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("address").port();
    let config = write_config(
        dir.path(),
        &format!(
            "listeners.tcp.default = 127.0.0.1:{taken_port}\n\
             default_user = file-user\ndefault_pass = file-pass\n"
        ),
    );
    let flag_port = free_port().to_string();
    let mut daemon = Daemon::start(
        &config,
        &[
            "--ephemeral",
            "--port",
            &flag_port,
            "--default-pass",
            "flag-pass",
        ],
        &[
            ("RMQD_DEFAULT_USER", "env-user"),
            ("RMQD_DEFAULT_PASS", "env-pass"),
        ],
    );
    let url = daemon.ready_line();
    let prefix = "amqp://env-user:flag-pass@127.0.0.1:";
    assert!(
        url.starts_with(prefix),
        "the environment's user, the flag's password, shown as it was typed: {url}"
    );
    assert_eq!(url, format!("{prefix}{flag_port}"), "--port over the file");
    let conn = connect_url(&url).await.expect("the resolved user logs in");
    open_channel(&conn).await;
}

#[test]
fn an_unknown_key_stops_rmqd_before_it_listens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        "default_user = admin\n# typo below\nlisteners.tcp.defualt = 5672\nheartbeats = 10\n",
    );
    let out = rmqd_command()
        .arg("--config")
        .arg(&config)
        .arg("--ephemeral")
        .stdin(Stdio::null())
        .output()
        .expect("rmqd runs");
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "no ready line");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // `listeners.tcp.NAME` takes any name: the bad line is the next one.
    assert!(
        stderr.contains(&format!("{}:4: unknown key 'heartbeats'", config.display())),
        "{stderr}"
    );

    let missing = rmqd_command()
        .args(["--config", "/nonexistent/rmqd.conf", "--ephemeral"])
        .stdin(Stdio::null())
        .output()
        .expect("rmqd runs");
    assert!(!missing.status.success(), "a named file must exist");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("/nonexistent/rmqd.conf"), "{stderr}");
}

#[tokio::test]
async fn a_disk_free_limit_above_the_free_space_blocks_publishers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let config = write_config(
        dir.path(),
        &format!(
            "listeners.tcp.default = 127.0.0.1:0\ndata_dir = {}\n\
             disk_free_limit.absolute = 1000000000GB\n",
            data.display()
        ),
    );
    let mut daemon = Daemon::start(&config, &[], &[]);
    let url = daemon.ready_line();
    let port = port_of(&url);

    let publisher = connect_url(&url).await.expect("connects");
    let ch = open_channel(&publisher).await;
    ch.queue_declare(
        "q".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("queue.declare");
    ch.basic_publish(
        "".into(),
        "q".into(),
        BasicPublishOptions::default(),
        b"one",
        BasicProperties::default(),
    )
    .await
    .expect("basic.publish is sent");
    wait_blocked(&publisher).await;

    assert_eq!(
        blocked_reason(port).await,
        "low on disk",
        "RabbitMQ's wording"
    );
    daemon.stderr_once_it_says("disk alarm set");
}

async fn wait_blocked(conn: &Connection) {
    let deadline = Instant::now() + WAIT;
    while !conn.status().blocked() {
        assert!(Instant::now() < deadline, "no connection.blocked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Logs in as guest announcing the `connection.blocked` capability, publishes one message and
/// returns the reason of the connection.blocked that follows. lapin keeps the reason to itself.
async fn blocked_reason(port: u16) -> String {
    let mut raw = Raw::connect_port(port).await;
    raw.start("guest", "guest", &["connection.blocked"]).await;
    raw.tune_and_open("/", 0).await;
    raw.channel_open(1).await;
    assert_eq!(
        raw.recv_non_heartbeat().await.method(),
        Some((20, 11)),
        "channel.open-ok"
    );
    raw.publish(1, "", "q", b"two").await;
    let blocked = raw.recv_non_heartbeat().await;
    assert_eq!(blocked.method(), Some((10, 60)), "connection.blocked");
    let reason = &blocked.payload[4..];
    let len = usize::from(reason[0]);
    String::from_utf8_lossy(&reason[1..1 + len]).into_owned()
}
