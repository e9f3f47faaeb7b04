//! `rmqd`: the AMQP 0-9-1 broker daemon.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use rmqd_broker::admin::socket::AdminSocket;
use rmqd_broker::{Broker, amqp_url, amqp_url_without_password};
use tracing::{error, info};

use crate::config::{ConfigError, KeyError, Layers, ListenerFlags, Machine, Resolved, Settings};

mod config;
mod ctl;
mod lifetime;

#[derive(Debug, Parser)]
#[command(
    name = "rmqd",
    version,
    about = "A self-contained AMQP 0-9-1 message broker",
    after_help = "Settings come from, in increasing precedence: the defaults, the config file \
                  (rabbitmq.conf's `key = value` format; see packaging/rmqd.conf.example), \
                  RMQD_* environment variables named after the keys (listeners.tcp.default → \
                  RMQD_LISTENERS_TCP_DEFAULT, default_pass → RMQD_DEFAULT_PASS), and these \
                  flags.\n\nAdminister a running rmqd with `rmqd ctl COMMAND` (rabbitmqctl's \
                  commands; `rmqd ctl --help`)."
)]
struct Args {
    /// The config file. Default: $RMQD_CONFIG_FILE, else /etc/rmqd/rmqd.conf if it exists.
    /// `--config /dev/null` reads none.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// TCP port of the default listener (listeners.tcp.default) [default: 5672].
    #[arg(long)]
    port: Option<u16>,
    /// Address of the default listener [default: 0.0.0.0, all interfaces, as RabbitMQ].
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Log level (log.level): debug, info, warning, error, critical, none, or trace
    /// [default: info]. RUST_LOG overrides it.
    #[arg(long, value_name = "LEVEL", value_parser = key_value("log.level"))]
    log_level: Option<KeyValue>,
    /// A user to create, as NAME:PASSWORD. May be repeated. Users get access to every vhost.
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    users: Vec<String>,
    /// A vhost to create besides the default one. May be repeated.
    #[arg(long = "vhost", value_name = "NAME")]
    vhosts: Vec<String>,
    /// The default user, created at start (default_user) [default: guest].
    #[arg(long, value_name = "NAME")]
    default_user: Option<String>,
    /// The default user's password (default_pass) [default: guest].
    #[arg(long, value_name = "PASSWORD")]
    default_pass: Option<String>,
    /// The default vhost (default_vhost) [default: /].
    #[arg(long, value_name = "NAME")]
    default_vhost: Option<String>,
    /// Heartbeat interval in seconds proposed to clients; 0 disables (heartbeat) [default: 60].
    #[arg(long, value_name = "SECONDS", value_parser = key_value("heartbeat"))]
    heartbeat: Option<KeyValue>,
    /// Bytes of queued message data above which publishers are blocked, such as 2GiB
    /// (vm_memory_high_watermark.absolute) [default: 40% of RAM].
    #[arg(long, value_name = "BYTES", value_parser = key_value("vm_memory_high_watermark.absolute"))]
    memory_high_watermark: Option<KeyValue>,
    /// Largest message body accepted, in bytes (max_message_size) [default: 128MiB].
    #[arg(long, value_name = "BYTES", value_parser = key_value("max_message_size"))]
    max_message_size: Option<KeyValue>,
    /// Where durable queues, exchanges, bindings and persistent messages are kept (data_dir).
    /// Default: $STATE_DIRECTORY (systemd's StateDirectory=), else /var/lib/rmqd as root,
    /// else $XDG_DATA_HOME/rmqd or ~/.local/share/rmqd.
    #[arg(long, value_name = "DIR", conflicts_with = "ephemeral")]
    data_dir: Option<PathBuf>,
    /// Size of the message log's segment files; disk space is reclaimed a segment at a time
    /// (message_segment_size) [default: 64MiB].
    #[arg(long, value_name = "BYTES", value_parser = key_value("message_segment_size"))]
    message_segment_size: Option<KeyValue>,
    /// Bytes of ready messages a durable queue keeps in memory; beyond them its persistent
    /// messages wait on disk and are read back as the queue drains (queue_memory_limit)
    /// [default: 64MiB].
    #[arg(long, value_name = "BYTES", value_parser = key_value("queue_memory_limit"))]
    queue_memory_limit: Option<KeyValue>,
    /// Keep everything in memory and nothing on disk (tests, embedded use).
    #[arg(long)]
    ephemeral: bool,
    /// A RabbitMQ definitions file (users, vhosts, permissions, exchanges, queues, bindings)
    /// to load before accepting connections. May be repeated; replaces load_definitions.
    #[arg(long = "definitions", value_name = "FILE")]
    definitions: Vec<PathBuf>,
    /// Once listening, also write the AMQP URL (the line printed on stdout) to this file.
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// Stop when the process that started rmqd exits (a crashed test run leaves no broker).
    #[arg(long)]
    exit_with_parent: bool,
    /// Unix socket for `rmqd ctl`, usable by this user only (ctl_socket). Default: rmqd.sock
    /// in the data dir; none with --ephemeral unless given.
    #[arg(long, value_name = "PATH")]
    ctl_socket: Option<PathBuf>,
}

/// A flag's value for a config key.
#[derive(Debug, Clone)]
struct KeyValue {
    key: &'static str,
    value: String,
}

/// A clap parser for a flag that sets a config key: the value is checked as the file's would
/// be, and applied to the flags' layer by [`Args::settings`].
fn key_value(key: &'static str) -> impl Fn(&str) -> Result<KeyValue, String> + Clone {
    move |value| match Settings::default().apply(key, value) {
        Ok(()) => Ok(KeyValue {
            key,
            value: value.to_string(),
        }),
        Err(KeyError::BadValue { reason, .. }) => Err(reason.to_string()),
        Err(err) => Err(err.to_string()),
    }
}

impl Args {
    /// The command line as a layer of settings.
    fn settings(&self) -> Result<Settings, KeyError> {
        let mut settings = Settings {
            default_user: self.default_user.clone(),
            default_pass: self.default_pass.clone(),
            default_vhost: self.default_vhost.clone(),
            data_dir: self.data_dir.clone(),
            ctl_socket: self.ctl_socket.clone(),
            definitions: (!self.definitions.is_empty()).then(|| self.definitions.clone()),
            ..Settings::default()
        };
        let keyed = [
            &self.log_level,
            &self.heartbeat,
            &self.memory_high_watermark,
            &self.max_message_size,
            &self.message_segment_size,
            &self.queue_memory_limit,
        ];
        for kv in keyed.into_iter().flatten() {
            settings.apply(kv.key, &kv.value)?;
        }
        Ok(settings)
    }
}

/// The documented default data dir (see `--data-dir`), when no setting names one.
fn default_data_dir() -> PathBuf {
    if let Some(state) = std::env::var_os("STATE_DIRECTORY")
        && let Some(first) = std::env::split_paths(&state).next()
    {
        return first;
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

fn machine() -> Machine {
    Machine {
        total_memory: rmqd_broker::physical_memory(),
        default_data_dir: default_data_dir(),
    }
}

/// The config file `--config` or $RMQD_CONFIG_FILE names, else the default one if it exists.
fn config_file(flag: Option<&Path>) -> Option<PathBuf> {
    config::choose_file(flag, std::env::var_os(config::FILE_VAR))
}

/// The settings the config file gives; none without one.
fn file_layer(path: Option<&Path>) -> Result<Settings, ConfigError> {
    path.map_or_else(|| Ok(Settings::default()), config::read_file)
}

/// The layers the daemon starts with: what cannot be read stops it.
fn layers(config_file: Option<&Path>, args: &Args) -> Result<Layers, ConfigError> {
    Ok(Layers {
        file: file_layer(config_file)?,
        env: config::from_env(|var| std::env::var_os(var))?,
        flags: args.settings()?,
    })
}

/// Where `rmqd ctl` looks for the daemon when `--socket` names none: where a daemon started
/// with the same config file and environment opens it. What of them cannot be read is no
/// reason not to try.
fn ctl_default_socket() -> PathBuf {
    let warn = |err: ConfigError| eprintln!("Warning: ignoring the configuration: {err}");
    let file = file_layer(config_file(None).as_deref()).unwrap_or_else(|err| {
        warn(err);
        Settings::default()
    });
    let layers = Layers {
        file,
        env: config::from_env_skipping(|var| std::env::var_os(var), warn),
        flags: Settings::default(),
    };
    config::ctl_socket(&layers, &default_data_dir())
}

fn main() -> ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "ctl") {
        argv.remove(0);
        return ctl::main(argv, ctl_default_socket);
    }
    let args = Args::parse_from(argv);
    let config_file = config_file(args.config.as_deref());
    let layers = match layers(config_file.as_deref(), &args) {
        Ok(layers) => layers,
        Err(err) => {
            // Logging is not set up yet: its level is part of what failed to load.
            eprintln!("rmqd: {err}");
            return ExitCode::FAILURE;
        }
    };
    let listener_flags = ListenerFlags {
        port: args.port,
        bind: args.bind,
    };
    let mut resolved = config::resolve(&layers, &listener_flags, args.ephemeral, machine());
    resolved.setup.vhosts = args.vhosts.clone();
    for spec in &args.users {
        let Some((name, password)) = spec.split_once(':') else {
            eprintln!("rmqd: --user takes NAME:PASSWORD, got '{spec}'");
            return ExitCode::FAILURE;
        };
        resolved
            .setup
            .users
            .push((name.to_string(), password.to_string()));
    }

    let rust_log = std::env::var("RUST_LOG").ok().filter(|f| !f.is_empty());
    let filter = match &rust_log {
        Some(directives) => tracing_subscriber::EnvFilter::new(directives),
        None => tracing_subscriber::EnvFilter::new(resolved.log_level.directive()),
    };
    // Logs go to stderr: stdout carries only the ready line, for whoever started rmqd.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    info!("starting rmqd {}", env!("CARGO_PKG_VERSION"));
    info!(
        "config file: {}",
        config_file
            .as_ref()
            .map_or("none".into(), |p| p.display().to_string())
    );
    match &rust_log {
        Some(directives) => info!("log level: {} (RUST_LOG={directives})", resolved.log_level),
        None => info!("log level: {}", resolved.log_level),
    }

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            error!("cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(resolved, args))
}

async fn run(config: Resolved, args: Args) -> ExitCode {
    info!(
        "data dir: {}",
        config
            .data_dir
            .as_ref()
            .map_or("none, everything is kept in memory".into(), |d| d
                .display()
                .to_string())
    );
    info!(
        "memory high watermark: {} bytes; disk free limit: {}",
        config.broker.memory_high_watermark,
        match config.data_dir {
            Some(_) => format!("{} bytes", config.broker.disk_free_limit),
            None => "none, nothing is on disk".to_string(),
        }
    );
    let broker = match &config.data_dir {
        None => Broker::new(config.broker.clone()),
        Some(dir) => match Broker::open(config.broker.clone(), dir) {
            Ok(broker) => broker,
            Err(err) => {
                error!("cannot open the data dir {}: {err}", dir.display());
                return ExitCode::FAILURE;
            }
        },
    };
    config.setup.apply(&broker);
    info!("vhosts: {}", config.setup.all_vhosts().join(", "));
    for path in &config.definitions {
        match rmqd_broker::definitions::load_file(&broker, path) {
            Ok(summary) => info!("loaded definitions from {}: {summary}", path.display()),
            Err(err) => {
                error!("cannot load definitions from {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }

    let admin = match &config.ctl_socket {
        None => None,
        Some(path) => match AdminSocket::bind(path).await {
            Ok(socket) => Some(socket),
            Err(err) => {
                error!("{err}");
                return ExitCode::FAILURE;
            }
        },
    };
    info!(
        "ctl socket: {}",
        config
            .ctl_socket
            .as_ref()
            .map_or("none".into(), |p| p.display().to_string())
    );

    let mut listeners = Vec::new();
    let mut bound = Vec::new();
    for (name, addr) in &config.listeners {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(err) => {
                error!("cannot listen on {addr} (listener {name}): {err}");
                return ExitCode::FAILURE;
            }
        };
        let local = listener.local_addr().unwrap_or(*addr);
        info!("listening for AMQP 0-9-1 on {local} (listener {name})");
        bound.push(local);
        listeners.push(listener);
    }
    let Some(first) = bound.first() else {
        error!("no listeners");
        return ExitCode::FAILURE;
    };
    if let Err(err) =
        lifetime::announce_ready(&ready_url(&config, *first), args.ready_file.as_deref())
    {
        error!("{err}");
        return ExitCode::FAILURE;
    }
    let admin_task = admin.map(|socket| tokio::spawn(socket.serve(Arc::clone(&broker))));
    let stop = lifetime::stop_requested(args.exit_with_parent);
    rmqd_broker::server::serve_all(listeners, Arc::clone(&broker), stop).await;
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

/// The URL a client connects with, as the default user. The password is left out when it came
/// from the config file or the environment: stdout may end up in a log.
fn ready_url(config: &Resolved, addr: SocketAddr) -> String {
    let host = lifetime::connectable_host(addr.ip());
    let setup = &config.setup;
    match config.password_shown {
        true => amqp_url(
            &host,
            addr.port(),
            &setup.default_user,
            &setup.default_pass,
            &setup.default_vhost,
        ),
        false => amqp_url_without_password(
            &host,
            addr.port(),
            &setup.default_user,
            &setup.default_vhost,
        ),
    }
}
