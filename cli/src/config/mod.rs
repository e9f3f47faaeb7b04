//! rmqd's configuration: a rabbitmq.conf-style file, `RMQD_*` environment variables and
//! command-line flags, in increasing order of precedence over the built-in defaults.

mod settings;
mod syntax;
mod values;

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use rmqd_broker::{BrokerConfig, Setup};

pub use settings::{KeyError, Settings};
use settings::{SCALAR_KEYS, env_var, set_listener};
use values::Listener;
pub use values::LogLevel;

/// The config file read when neither `--config` nor `$RMQD_CONFIG_FILE` names one, if it
/// exists.
pub const DEFAULT_FILE: &str = "/etc/rmqd/rmqd.conf";

/// Names the config file, like RabbitMQ's `RABBITMQ_CONFIG_FILE`.
pub const FILE_VAR: &str = "RMQD_CONFIG_FILE";

/// The AMQP port when nothing says otherwise.
const DEFAULT_PORT: u16 = 5672;

/// The listener `--port` and `--bind` change (RabbitMQ's `listeners.tcp.default`).
const DEFAULT_LISTENER: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {problem}", path.display())]
    InFile {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("environment variable {var}{problem}")]
    InEnvironment { var: String, problem: String },
    #[error("{0}")]
    OnCommandLine(#[from] KeyError),
}

/// The config file to read: `--config`, else `$RMQD_CONFIG_FILE`, else [`DEFAULT_FILE`] if it
/// exists. A file named by the first two must exist.
pub fn choose_file(flag: Option<&Path>, env: Option<OsString>) -> Option<PathBuf> {
    if let Some(path) = flag {
        return Some(path.to_path_buf());
    }
    if let Some(path) = env.filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.exists())
}

/// Reads the settings a config file gives.
pub fn read_file(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    parse_file(path, &text)
}

fn parse_file(path: &Path, text: &str) -> Result<Settings, ConfigError> {
    let in_file = |line, problem: String| ConfigError::InFile {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let entries = syntax::parse(text).map_err(|err| in_file(err.line, err.problem))?;
    let mut settings = Settings::default();
    for entry in entries {
        settings
            .apply(&entry.key, &entry.value)
            .map_err(|err| in_file(entry.line, err.to_string()))?;
    }
    Ok(settings)
}

/// The settings `RMQD_*` variables give, one per scalar key (see [`env_var`]); the first
/// variable that cannot be applied is the error.
pub fn from_env(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Settings, ConfigError> {
    let mut first_error = None;
    let settings = from_env_skipping(lookup, |err| {
        first_error.get_or_insert(err);
    });
    first_error.map_or(Ok(settings), Err)
}

/// The settings `RMQD_*` variables give, leaving out those that cannot be applied: each is
/// handed to `skipped` instead.
pub fn from_env_skipping(
    lookup: impl Fn(&str) -> Option<OsString>,
    mut skipped: impl FnMut(ConfigError),
) -> Settings {
    let mut settings = Settings::default();
    for key in SCALAR_KEYS {
        let var = env_var(key);
        let Some(value) = lookup(&var) else {
            continue;
        };
        let error = |problem: String| ConfigError::InEnvironment {
            var: var.clone(),
            problem,
        };
        let applied = match value.into_string() {
            Ok(value) => settings.apply(key, value.trim()).map_err(|err| match err {
                KeyError::BadValue { value, reason, .. } => error(format!("={value}: {reason}")),
                KeyError::Unknown(_) => error(format!(": {err}")),
            }),
            Err(_) => Err(error(": not valid UTF-8".to_string())),
        };
        if let Err(err) = applied {
            skipped(err);
        }
    }
    settings
}

/// What the command line says beyond the keys: the default listener's port and address.
#[derive(Debug, Clone, Default)]
pub struct ListenerFlags {
    pub port: Option<u16>,
    pub bind: Option<IpAddr>,
}

/// The three layers, each over the one before.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    pub file: Settings,
    pub env: Settings,
    pub flags: Settings,
}

impl Layers {
    /// The value of the highest layer that sets it.
    fn get<T>(&self, get: impl Fn(&Settings) -> Option<T>) -> Option<T> {
        [&self.flags, &self.env, &self.file]
            .into_iter()
            .find_map(get)
    }
}

/// Facts about the machine that relative and default settings depend on.
pub struct Machine {
    /// Bytes of RAM, for `.relative` limits.
    pub total_memory: u64,
    /// Where the data dir is when nothing names one.
    pub default_data_dir: PathBuf,
}

/// Everything rmqd starts with.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// TCP listeners by name, the default one (whose URL is printed) first.
    pub listeners: Vec<(String, SocketAddr)>,
    pub broker: BrokerConfig,
    pub setup: Setup,
    /// The default user's password may appear in the ready URL: it is the well-known default
    /// or was typed on the command line, not taken from a file or the environment.
    pub password_shown: bool,
    pub log_level: LogLevel,
    /// `None`: everything in memory.
    pub data_dir: Option<PathBuf>,
    pub ctl_socket: Option<PathBuf>,
    pub definitions: Vec<PathBuf>,
}

/// Merges the layers over the defaults. `ephemeral` (a flag) keeps everything in memory
/// whatever names a data dir.
pub fn resolve(
    layers: &Layers,
    listener_flags: &ListenerFlags,
    ephemeral: bool,
    machine: Machine,
) -> Resolved {
    let total_memory = machine.total_memory;
    let mut broker = BrokerConfig::default();
    set(&mut broker.frame_max, layers.get(|s| s.frame_max));
    set(&mut broker.channel_max, layers.get(|s| s.channel_max));
    set(&mut broker.heartbeat, layers.get(|s| s.heartbeat));
    set(
        &mut broker.max_message_size,
        layers.get(|s| s.max_message_size),
    );
    set(
        &mut broker.handshake_timeout,
        layers.get(|s| s.handshake_timeout),
    );
    set(
        &mut broker.memory_high_watermark,
        layers
            .get(|s| s.memory_high_watermark)
            .map(|limit| usize::try_from(limit.bytes(total_memory)).unwrap_or(usize::MAX)),
    );
    set(
        &mut broker.cluster_name,
        layers.get(|s| s.cluster_name.clone()),
    );
    set(
        &mut broker.message_segment_size,
        layers.get(|s| s.message_segment_size),
    );
    set(
        &mut broker.queue_memory_limit,
        layers.get(|s| s.queue_memory_limit),
    );
    set(
        &mut broker.consumer_timeout,
        layers.get(|s| s.consumer_timeout.map(Some)),
    );
    set(
        &mut broker.disk_free_limit,
        layers
            .get(|s| s.disk_free_limit)
            .map(|limit| limit.bytes(total_memory)),
    );
    let setup_defaults = Setup::default();
    let setup = Setup {
        default_user: layers
            .get(|s| s.default_user.clone())
            .unwrap_or(setup_defaults.default_user.clone()),
        default_pass: layers
            .get(|s| s.default_pass.clone())
            .unwrap_or(setup_defaults.default_pass.clone()),
        default_vhost: layers
            .get(|s| s.default_vhost.clone())
            .unwrap_or(setup_defaults.default_vhost.clone()),
        loopback_users: layers
            .get(|s| s.loopback_users.as_ref().map(|l| l.names()))
            .unwrap_or(setup_defaults.loopback_users.clone()),
        ..setup_defaults
    };
    let data_dir = (!ephemeral).then(|| data_dir(layers, &machine.default_data_dir));
    let ctl_socket = match ephemeral {
        false => Some(ctl_socket(layers, &machine.default_data_dir)),
        // No data dir to put one in: only a socket a layer names is opened.
        true => layers.get(|s| s.ctl_socket.clone()),
    };
    Resolved {
        listeners: listeners(layers, listener_flags),
        broker,
        setup,
        password_shown: layers.flags.default_pass.is_some()
            || (layers.env.default_pass.is_none() && layers.file.default_pass.is_none()),
        log_level: layers.get(|s| s.log_level).unwrap_or(LogLevel::Info),
        data_dir,
        ctl_socket,
        definitions: layers.get(|s| s.definitions.clone()).unwrap_or_default(),
    }
}

/// Overrides a default with the value some layer gave.
fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// The data dir a layer names, else the default one.
fn data_dir(layers: &Layers, default_data_dir: &Path) -> PathBuf {
    layers
        .get(|s| s.data_dir.clone())
        .unwrap_or_else(|| default_data_dir.to_path_buf())
}

/// Where a daemon started with these layers (and not `--ephemeral`) opens its ctl socket, and
/// so where `rmqd ctl` looks for it: the path a layer names, else `rmqd.sock` in the data dir.
pub fn ctl_socket(layers: &Layers, default_data_dir: &Path) -> PathBuf {
    layers
        .get(|s| s.ctl_socket.clone())
        .unwrap_or_else(|| data_dir(layers, default_data_dir).join("rmqd.sock"))
}

/// The named listeners of the file and the environment (a name given again replaces the
/// earlier address), with `--port` and `--bind` applied to the default one. A listener without
/// an address listens on every IPv4 interface, as RabbitMQ does by default.
fn listeners(layers: &Layers, flags: &ListenerFlags) -> Vec<(String, SocketAddr)> {
    let mut merged = layers.file.listeners.clone();
    for (name, listener) in &layers.env.listeners {
        set_listener(&mut merged, name, *listener);
    }
    if flags.port.is_some() || flags.bind.is_some() || merged.is_empty() {
        let current = merged
            .iter()
            .find(|(name, _)| name == DEFAULT_LISTENER)
            .map(|(_, l)| *l);
        let listener = Listener {
            ip: flags.bind.or(current.and_then(|l| l.ip)),
            port: flags
                .port
                .or(current.map(|l| l.port))
                .unwrap_or(DEFAULT_PORT),
        };
        set_listener(&mut merged, DEFAULT_LISTENER, listener);
    }
    let mut listeners: Vec<(String, SocketAddr)> = merged
        .into_iter()
        .map(|(name, l)| {
            let ip = l.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            (name, SocketAddr::new(ip, l.port))
        })
        .collect();
    // Stable: the others keep the file's order.
    listeners.sort_by_key(|(name, _)| name != DEFAULT_LISTENER);
    listeners
}

#[cfg(test)]
mod tests;
