//! `rmqd`: the AMQP 0-9-1 broker daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use rmqd_broker::admin::socket::AdminSocket;
use rmqd_broker::{Broker, BrokerConfig, Setup, amqp_url};
use tracing::{error, info};

mod ctl;
mod lifetime;

#[derive(Debug, Parser)]
#[command(
    name = "rmqd",
    version,
    about = "A self-contained AMQP 0-9-1 message broker",
    after_help = "Administer a running rmqd with `rmqd ctl COMMAND` (rabbitmqctl's commands; \
                  `rmqd ctl --help`)."
)]
struct Args {
    /// TCP port for AMQP connections.
    #[arg(long, default_value_t = 5672)]
    port: u16,
    /// Address to listen on (all interfaces by default, as RabbitMQ).
    #[arg(long, default_value = "0.0.0.0")]
    bind: std::net::IpAddr,
    /// Log level: error, warn, info, debug or trace (RUST_LOG overrides it).
    #[arg(long, default_value = "info")]
    log_level: String,
    /// A user to create, as NAME:PASSWORD. May be repeated. Users get access to every vhost.
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    users: Vec<String>,
    /// A vhost to create besides the default one. May be repeated.
    #[arg(long = "vhost", value_name = "NAME")]
    vhosts: Vec<String>,
    /// The default user, created at start (RabbitMQ's default_user).
    #[arg(long, default_value = "guest")]
    default_user: String,
    /// The default user's password (RabbitMQ's default_pass).
    #[arg(long, default_value = "guest")]
    default_pass: String,
    /// The default vhost (RabbitMQ's default_vhost).
    #[arg(long, default_value = "/")]
    default_vhost: String,
    /// Heartbeat interval in seconds proposed to clients; 0 disables.
    #[arg(long, default_value_t = 60)]
    heartbeat: u16,
    /// Bytes of queued message data above which publishers are blocked (default: 40% of RAM).
    #[arg(long)]
    memory_high_watermark: Option<usize>,
    /// Largest message body accepted, in bytes.
    #[arg(long, default_value_t = 128 << 20)]
    max_message_size: usize,
    /// Where durable queues, exchanges, bindings and persistent messages are kept. Default:
    /// $RMQD_DATA_DIR, else /var/lib/rmqd as root, else $XDG_DATA_HOME/rmqd or
    /// ~/.local/share/rmqd.
    #[arg(long, value_name = "DIR", conflicts_with = "ephemeral")]
    data_dir: Option<PathBuf>,
    /// Size of the message log's segment files; disk space is reclaimed a segment at a time.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    message_segment_size: u64,
    /// Bytes of ready messages a durable queue keeps in memory; beyond them its persistent
    /// messages wait on disk and are read back as the queue drains.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    queue_memory_limit: usize,
    /// Keep everything in memory and nothing on disk (tests, embedded use).
    #[arg(long)]
    ephemeral: bool,
    /// A RabbitMQ definitions file (users, vhosts, permissions, exchanges, queues, bindings)
    /// to load before accepting connections. May be repeated.
    #[arg(long = "definitions", value_name = "FILE")]
    definitions: Vec<PathBuf>,
    /// Once listening, also write the AMQP URL (the line printed on stdout) to this file.
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// Stop when the process that started rmqd exits (a crashed test run leaves no broker).
    #[arg(long)]
    exit_with_parent: bool,
    /// Unix socket for `rmqd ctl`, usable by this user only. Default: rmqd.sock in the data
    /// dir; none with --ephemeral unless given.
    #[arg(long, value_name = "PATH", env = "RMQD_CTL_SOCKET")]
    ctl_socket: Option<PathBuf>,
}

/// The documented default data dir (see `--data-dir`).
fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RMQD_DATA_DIR") {
        return PathBuf::from(dir);
    }
    // Root runs the packaged daemon; /proc/self/status names the effective uid without unsafe.
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false);
    if root {
        return PathBuf::from("/var/lib/rmqd");
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(data).join("rmqd");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/rmqd"),
        None => PathBuf::from("rmqd-data"),
    }
}

/// Where a daemon with this data dir opens its ctl socket, and where `rmqd ctl` looks for it.
fn ctl_socket_in(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("rmqd.sock")
}

fn main() -> ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "ctl") {
        argv.remove(0);
        return ctl::main(argv, ctl_socket_in(&default_data_dir()));
    }
    let args = Args::parse_from(argv);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log_level));
    // Logs go to stderr: stdout carries only the ready line, for whoever started rmqd.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            error!("cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let mut config = BrokerConfig {
        heartbeat: args.heartbeat,
        max_message_size: args.max_message_size,
        message_segment_size: args.message_segment_size,
        queue_memory_limit: args.queue_memory_limit,
        ..BrokerConfig::default()
    };
    if let Some(watermark) = args.memory_high_watermark {
        config.memory_high_watermark = watermark;
    }
    let data_dir =
        (!args.ephemeral).then(|| args.data_dir.clone().unwrap_or_else(default_data_dir));
    let broker = match &data_dir {
        None => {
            info!("ephemeral: nothing is kept on disk");
            Broker::new(config)
        }
        Some(dir) => match Broker::open(config, dir) {
            Ok(broker) => broker,
            Err(err) => {
                error!("cannot open the data dir {}: {err}", dir.display());
                return ExitCode::FAILURE;
            }
        },
    };
    let mut setup = Setup {
        default_user: args.default_user.clone(),
        default_pass: args.default_pass.clone(),
        default_vhost: args.default_vhost.clone(),
        vhosts: args.vhosts.clone(),
        ..Setup::default()
    };
    for spec in &args.users {
        let Some((name, password)) = spec.split_once(':') else {
            error!("--user takes NAME:PASSWORD, got '{spec}'");
            return ExitCode::FAILURE;
        };
        setup.users.push((name.to_string(), password.to_string()));
    }
    setup.apply(&broker);
    for path in &args.definitions {
        match rmqd_broker::definitions::load_file(&broker, path) {
            Ok(summary) => info!("loaded definitions from {}: {summary}", path.display()),
            Err(err) => {
                error!("cannot load definitions from {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }

    let ctl_path = args
        .ctl_socket
        .clone()
        .or_else(|| data_dir.as_deref().map(ctl_socket_in));
    let admin = match &ctl_path {
        None => None,
        Some(path) => match AdminSocket::bind(path).await {
            Ok(socket) => Some(socket),
            Err(err) => {
                error!("{err}");
                return ExitCode::FAILURE;
            }
        },
    };

    let addr = SocketAddr::new(args.bind, args.port);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(err) => {
            error!("cannot listen on {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    info!(
        "rmqd {} listening for AMQP 0-9-1 on {bound} (vhosts: {}; data dir: {}; ctl socket: {})",
        env!("CARGO_PKG_VERSION"),
        setup.all_vhosts().join(", "),
        data_dir
            .as_ref()
            .map_or("none, ephemeral".into(), |d| d.display().to_string()),
        ctl_path
            .as_ref()
            .map_or("none".into(), |p| p.display().to_string()),
    );
    let url = amqp_url(
        &lifetime::connectable_host(bound.ip()),
        bound.port(),
        &args.default_user,
        &args.default_pass,
        &args.default_vhost,
    );
    if let Err(err) = lifetime::announce_ready(&url, args.ready_file.as_deref()) {
        error!("{err}");
        return ExitCode::FAILURE;
    }
    let admin_task = admin.map(|socket| tokio::spawn(socket.serve(Arc::clone(&broker))));
    let stop = lifetime::stop_requested(args.exit_with_parent);
    rmqd_broker::server::serve(listener, Arc::clone(&broker), stop).await;
    if let Some(task) = admin_task {
        task.abort();
        // The socket file goes with the task's AdminSocket.
        let _ = task.await;
    }
    if let Err(err) = broker.sync_to_disk() {
        error!("could not flush the data dir on shutdown: {err}");
        return ExitCode::FAILURE;
    }
    info!("rmqd stopped");
    ExitCode::SUCCESS
}
