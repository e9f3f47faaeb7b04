//! The binary configured as RabbitMQ is: a rabbitmq.conf-style file given with `--config`,
//! `RMQD_*` environment variables over it, flags over both, and start refused on a bad file.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{WAIT, connect_url, open_channel, rmqd_binary};
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running rmqd with piped stdio; its stderr is collected as it comes.
struct Daemon {
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    fn start(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut child = rmqd()
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
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read stdout");
        assert!(
            line.ends_with('\n'),
            "no ready line; stderr: {}",
            self.stderr()
        );
        line.trim_end().to_string()
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
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// rmqd with no configuration leaking in from the environment running the tests.
fn rmqd() -> Command {
    let mut command = Command::new(rmqd_binary());
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("RMQD_") || var == "RUST_LOG" {
            command.env_remove(var);
        }
    }
    command
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
    let listed = rmqd()
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
    let mut daemon = Daemon::start(
        &config,
        &["--ephemeral", "--port", "0", "--default-pass", "flag-pass"],
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
    assert_ne!(url, format!("{prefix}{taken_port}"), "--port over the file");
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
    let out = rmqd()
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

    let missing = rmqd()
        .args(["--config", "/nonexistent/rmqd.conf", "--ephemeral"])
        .stdin(Stdio::null())
        .output()
        .expect("rmqd runs");
    assert!(!missing.status.success(), "a named file must exist");
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
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the URL ends with the port");

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
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream
        .write_all(b"AMQP\x00\x00\x09\x01")
        .await
        .expect("send");
    let mut frames = Frames::default();
    assert_eq!(frames.next_method(&mut stream).await.0, (10, 10), "start");

    let mut caps = shortstr("connection.blocked");
    caps.extend_from_slice(b"t\x01");
    let mut props = shortstr("capabilities");
    props.push(b'F');
    props.extend(longstr(&caps));
    let mut start_ok = longstr(&props);
    start_ok.extend(shortstr("PLAIN"));
    start_ok.extend(longstr(b"\0guest\0guest"));
    start_ok.extend(shortstr("en_US"));
    send_method(&mut stream, 0, (10, 11), &start_ok).await;

    let ((class, method), tune) = frames.next_method(&mut stream).await;
    assert_eq!((class, method), (10, 30), "tune");
    let mut tune_ok = tune[..6].to_vec();
    tune_ok.extend_from_slice(&[0, 0]); // no heartbeats
    send_method(&mut stream, 0, (10, 31), &tune_ok).await;
    let mut open = shortstr("/");
    open.extend_from_slice(&[0, 0]);
    send_method(&mut stream, 0, (10, 40), &open).await;
    assert_eq!(frames.next_method(&mut stream).await.0, (10, 41), "open-ok");
    send_method(&mut stream, 1, (20, 10), &[0]).await;
    assert_eq!(
        frames.next_method(&mut stream).await.0,
        (20, 11),
        "channel open-ok"
    );

    let mut publish = vec![0, 0];
    publish.extend(shortstr(""));
    publish.extend(shortstr("q"));
    publish.push(0);
    send_method(&mut stream, 1, (60, 40), &publish).await;
    let body = b"two";
    let mut header = Vec::new();
    header.extend_from_slice(&60u16.to_be_bytes());
    header.extend_from_slice(&0u16.to_be_bytes());
    header.extend_from_slice(&(body.len() as u64).to_be_bytes());
    header.extend_from_slice(&0u16.to_be_bytes());
    send_frame(&mut stream, 2, 1, &header).await;
    send_frame(&mut stream, 3, 1, body).await;

    let ((class, method), args) = frames.next_method(&mut stream).await;
    assert_eq!((class, method), (10, 60), "connection.blocked");
    let len = usize::from(args[0]);
    String::from_utf8_lossy(&args[1..1 + len]).into_owned()
}

fn shortstr(text: &str) -> Vec<u8> {
    let mut out = vec![u8::try_from(text.len()).expect("short")];
    out.extend_from_slice(text.as_bytes());
    out
}

fn longstr(bytes: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(bytes.len())
        .expect("long")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(bytes);
    out
}

async fn send_frame(stream: &mut tokio::net::TcpStream, kind: u8, channel: u16, payload: &[u8]) {
    let mut frame = vec![kind];
    frame.extend_from_slice(&channel.to_be_bytes());
    frame.extend(longstr(payload));
    frame.push(0xCE);
    stream.write_all(&frame).await.expect("send");
}

async fn send_method(
    stream: &mut tokio::net::TcpStream,
    channel: u16,
    (class, method): (u16, u16),
    args: &[u8],
) {
    let mut payload = class.to_be_bytes().to_vec();
    payload.extend_from_slice(&method.to_be_bytes());
    payload.extend_from_slice(args);
    send_frame(stream, 1, channel, &payload).await;
}

/// Frames read off a socket.
#[derive(Default)]
struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    /// The next method frame's (class, method) and arguments.
    async fn next_method(&mut self, stream: &mut tokio::net::TcpStream) -> ((u16, u16), Vec<u8>) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if self.buf.len() >= 7 {
                let size = u32::from_be_bytes([self.buf[3], self.buf[4], self.buf[5], self.buf[6]])
                    as usize;
                if self.buf.len() >= 8 + size {
                    let frame: Vec<u8> = self.buf.drain(..8 + size).collect();
                    if frame[0] == 1 {
                        let payload = &frame[7..7 + size];
                        let class = u16::from_be_bytes([payload[0], payload[1]]);
                        let method = u16::from_be_bytes([payload[2], payload[3]]);
                        return ((class, method), payload[4..].to_vec());
                    }
                    continue;
                }
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                other => panic!("no method frame from the broker: {other:?}"),
            }
        }
    }
}
