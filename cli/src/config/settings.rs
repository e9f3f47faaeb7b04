//! The keys rmqd understands, and one layer of settings (the config file, the environment, or
//! the command line) as those keys set them. A layer only records what it was told; layers
//! are merged in [`super::resolve`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::values::{
    Limit, Listener, LogLevel, ValueError, boolean, bytes_within, fraction, information_unit,
    milliseconds, whole,
};

/// RabbitMQ's limit on `max_message_size` (512 MiB).
const MAX_MESSAGE_SIZE_LIMIT: u64 = 512 << 20;

/// AMQP's smallest frame_max; 0 means no limit.
const MIN_FRAME_MAX: u64 = 4096;

/// Keys without a `NAME` part; each can also be set from the environment as `RMQD_` followed
/// by the key in upper case with dots as underscores (see [`env_var`]). The file also takes
/// [`ALIASES`], `listeners.tcp.NAME` and `loopback_users.NAME`.
pub const SCALAR_KEYS: &[&str] = &[
    "listeners.tcp.default",
    "default_user",
    "default_pass",
    "default_vhost",
    "loopback_users",
    "vm_memory_high_watermark.relative",
    "vm_memory_high_watermark.absolute",
    "disk_free_limit.absolute",
    "disk_free_limit.relative",
    "heartbeat",
    "frame_max",
    "channel_max",
    "max_message_size",
    "consumer_timeout",
    "handshake_timeout",
    "cluster_name",
    "load_definitions",
    "log.level",
    "data_dir",
    "ctl_socket",
    "message_segment_size",
    "queue_memory_limit",
];

/// Other names the file takes for scalar keys: RabbitMQ's older plain watermark, and its
/// console log level (rmqd logs to the console only).
pub const ALIASES: &[(&str, &str)] = &[
    (
        "vm_memory_high_watermark",
        "vm_memory_high_watermark.relative",
    ),
    ("log.console.level", "log.level"),
];

/// The environment variable that sets `key`: `log.level` → `RMQD_LOG_LEVEL`.
pub fn env_var(key: &str) -> String {
    format!("RMQD_{}", key.to_ascii_uppercase().replace(['.', '-'], "_"))
}

/// RabbitMQ's `loopback_users`: `none`, or `loopback_users.NAME = true|false` entries that
/// replace the default list (guest) altogether.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoopbackUsers {
    pub none: bool,
    pub users: BTreeMap<String, bool>,
}

impl LoopbackUsers {
    pub fn names(&self) -> Vec<String> {
        if self.none {
            return Vec::new();
        }
        self.users
            .iter()
            .filter(|(_, on)| **on)
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// What one layer says; `None` leaves the setting to the layers below.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// `listeners.tcp.NAME`, in the order first given.
    pub listeners: Vec<(String, Listener)>,
    pub default_user: Option<String>,
    pub default_pass: Option<String>,
    pub default_vhost: Option<String>,
    pub loopback_users: Option<LoopbackUsers>,
    pub memory_high_watermark: Option<Limit>,
    pub disk_free_limit: Option<Limit>,
    pub heartbeat: Option<u16>,
    pub frame_max: Option<u32>,
    pub channel_max: Option<u16>,
    pub max_message_size: Option<usize>,
    pub consumer_timeout: Option<Duration>,
    pub handshake_timeout: Option<Duration>,
    pub cluster_name: Option<String>,
    pub definitions: Option<Vec<PathBuf>>,
    pub log_level: Option<LogLevel>,
    pub data_dir: Option<PathBuf>,
    pub ctl_socket: Option<PathBuf>,
    pub message_segment_size: Option<u64>,
    pub queue_memory_limit: Option<usize>,
}

/// Why a key could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("unknown key '{0}'")]
    Unknown(String),
    #[error("{key} = {value}: {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: ValueError,
    },
}

impl Settings {
    /// Applies `key = value`. A later value for the same key replaces an earlier one; as in
    /// RabbitMQ, a `.relative` limit wins over an `.absolute` one given in the same layer.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<(), KeyError> {
        let canonical = ALIASES
            .iter()
            .find(|(alias, _)| *alias == key)
            .map_or(key, |(_, canonical)| canonical);
        self.apply_value(canonical, value)
            .map_err(|outcome| match outcome {
                Outcome::Unknown => KeyError::Unknown(key.to_string()),
                // A password is never bad, so never echoed here.
                Outcome::Bad(reason) => KeyError::BadValue {
                    key: key.to_string(),
                    value: value.to_string(),
                    reason,
                },
            })
    }

    fn apply_value(&mut self, key: &str, value: &str) -> Result<(), Outcome> {
        let text = || Some(value.to_string());
        let path = || Some(PathBuf::from(value));
        match key {
            "listeners.tcp" => {
                return Err(Outcome::Bad(ValueError(
                    "rmqd has only plain TCP listeners, so they cannot be turned off (RabbitMQ's \
                     `listeners.tcp = none` is for TLS-only nodes)"
                        .to_string(),
                )));
            }
            "default_user" => self.default_user = text(),
            "default_pass" => self.default_pass = text(),
            "default_vhost" => self.default_vhost = text(),
            "loopback_users" => match value {
                "none" => {
                    self.loopback_users.get_or_insert_default().none = true;
                }
                _ => {
                    return Err(Outcome::Bad(ValueError(
                        "expected none (or loopback_users.NAME = true|false per user)".into(),
                    )));
                }
            },
            "vm_memory_high_watermark.relative" => {
                self.memory_high_watermark = Some(Limit::Relative(fraction(value)?));
            }
            "vm_memory_high_watermark.absolute" => {
                let bytes = information_unit(value)?;
                if !matches!(self.memory_high_watermark, Some(Limit::Relative(_))) {
                    self.memory_high_watermark = Some(Limit::Absolute(bytes));
                }
            }
            "disk_free_limit.relative" => {
                self.disk_free_limit = Some(Limit::Relative(fraction(value)?));
            }
            "disk_free_limit.absolute" => {
                let bytes = information_unit(value)?;
                if !matches!(self.disk_free_limit, Some(Limit::Relative(_))) {
                    self.disk_free_limit = Some(Limit::Absolute(bytes));
                }
            }
            "heartbeat" => self.heartbeat = Some(whole(value)?),
            "frame_max" => {
                let frame_max: u32 = bytes_within(value, 0, u32::MAX.into())?;
                if frame_max != 0 && u64::from(frame_max) < MIN_FRAME_MAX {
                    return Err(Outcome::Bad(ValueError(format!(
                        "must be 0 (no limit) or at least AMQP's minimum of {MIN_FRAME_MAX}"
                    ))));
                }
                self.frame_max = Some(frame_max);
            }
            "channel_max" => self.channel_max = Some(whole(value)?),
            "max_message_size" => {
                self.max_message_size = Some(bytes_within(value, 1, MAX_MESSAGE_SIZE_LIMIT)?);
            }
            "consumer_timeout" => self.consumer_timeout = Some(milliseconds(value)?),
            "handshake_timeout" => self.handshake_timeout = Some(milliseconds(value)?),
            "cluster_name" => self.cluster_name = text(),
            "load_definitions" => self.definitions = Some(vec![PathBuf::from(value)]),
            "log.level" => self.log_level = Some(LogLevel::parse(value)?),
            "data_dir" => self.data_dir = path(),
            "ctl_socket" => self.ctl_socket = path(),
            "message_segment_size" => {
                self.message_segment_size = Some(bytes_within(value, 1, u64::MAX)?);
            }
            "queue_memory_limit" => {
                self.queue_memory_limit = Some(bytes_within(value, 0, u64::MAX)?);
            }
            _ => {
                if let Some(name) = key.strip_prefix("listeners.tcp.") {
                    set_listener(&mut self.listeners, name, Listener::parse(value)?);
                } else if let Some(user) = key.strip_prefix("loopback_users.") {
                    let on = boolean(value)?;
                    let list = self.loopback_users.get_or_insert_default();
                    list.users.insert(user.to_string(), on);
                } else {
                    return Err(Outcome::Unknown);
                }
            }
        }
        Ok(())
    }
}

/// Adds a named listener, or replaces the address of one by that name where it stands.
pub fn set_listener(listeners: &mut Vec<(String, Listener)>, name: &str, listener: Listener) {
    match listeners.iter_mut().find(|(n, _)| n == name) {
        Some((_, existing)) => *existing = listener,
        None => listeners.push((name.to_string(), listener)),
    }
}

enum Outcome {
    Unknown,
    Bad(ValueError),
}

impl From<ValueError> for Outcome {
    fn from(err: ValueError) -> Self {
        Outcome::Bad(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let mut settings = Settings::default();
        for (key, value) in pairs {
            settings.apply(key, value).unwrap();
        }
        settings
    }

    #[test]
    fn env_vars_follow_the_key_names() {
        assert_eq!(
            env_var("listeners.tcp.default"),
            "RMQD_LISTENERS_TCP_DEFAULT"
        );
        assert_eq!(env_var("default_pass"), "RMQD_DEFAULT_PASS");
        assert_eq!(env_var("log.level"), "RMQD_LOG_LEVEL");
        assert_eq!(
            env_var("vm_memory_high_watermark.relative"),
            "RMQD_VM_MEMORY_HIGH_WATERMARK_RELATIVE"
        );
    }

    #[test]
    fn every_scalar_key_is_known() {
        let mut s = Settings::default();
        let aliases = ALIASES.iter().map(|(alias, _)| alias);
        for key in SCALAR_KEYS.iter().chain(aliases) {
            assert_ne!(
                s.apply(key, "x"),
                Err(KeyError::Unknown(key.to_string())),
                "{key}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let mut s = Settings::default();
        assert_eq!(
            s.apply("heartbeats", "10"),
            Err(KeyError::Unknown("heartbeats".into()))
        );
        assert_eq!(
            s.apply("log.file", "rmqd.log"),
            Err(KeyError::Unknown("log.file".into()))
        );
    }

    #[test]
    fn bad_values_name_key_value_and_reason_but_a_password_is_never_bad() {
        let mut s = Settings::default();
        let err = s.apply("heartbeat", "soon").unwrap_err();
        assert_eq!(
            err.to_string(),
            "heartbeat = soon: expected a whole number from 0 to 65535"
        );
        let err = s.apply("frame_max", "1000").unwrap_err().to_string();
        assert!(err.contains("at least AMQP's minimum of 4096"), "{err}");
        let err = s.apply("max_message_size", "1GiB").unwrap_err().to_string();
        assert!(err.contains("between 1 and 536870912"), "{err}");
        assert!(s.apply("listeners.tcp", "none").is_err());
        assert_eq!(s.apply("default_pass", "s3cret"), Ok(()));
        assert_eq!(s.default_pass.as_deref(), Some("s3cret"));
    }

    #[test]
    fn relative_limits_win_over_absolute_ones_in_the_same_layer() {
        let s = settings(&[
            ("vm_memory_high_watermark.relative", "0.5"),
            ("vm_memory_high_watermark.absolute", "1GB"),
            ("disk_free_limit.absolute", "2GB"),
        ]);
        assert_eq!(s.memory_high_watermark, Some(Limit::Relative(0.5)));
        assert_eq!(s.disk_free_limit, Some(Limit::Absolute(2_000_000_000)));
        let s = settings(&[
            ("disk_free_limit.absolute", "2GB"),
            ("disk_free_limit.relative", "1.5"),
        ]);
        assert_eq!(s.disk_free_limit, Some(Limit::Relative(1.5)));
        let s = settings(&[("vm_memory_high_watermark", "0.6")]);
        assert_eq!(s.memory_high_watermark, Some(Limit::Relative(0.6)));
    }

    #[test]
    fn loopback_users_replace_the_default_list() {
        let s = settings(&[("loopback_users.guest", "false")]);
        assert_eq!(s.loopback_users.unwrap().names(), Vec::<String>::new());
        let s = settings(&[
            ("loopback_users.admin", "true"),
            ("loopback_users.guest", "false"),
        ]);
        assert_eq!(s.loopback_users.unwrap().names(), ["admin"]);
        let s = settings(&[("loopback_users.admin", "true"), ("loopback_users", "none")]);
        assert_eq!(s.loopback_users.unwrap().names(), Vec::<String>::new());
        assert!(
            Settings::default()
                .apply("loopback_users", "guest")
                .is_err()
        );
        assert!(
            Settings::default()
                .apply("loopback_users.guest", "yes")
                .is_err()
        );
    }

    #[test]
    fn named_listeners_keep_their_order_and_a_repeated_name_replaces() {
        let s = settings(&[
            ("listeners.tcp.local", "127.0.0.1:5672"),
            ("listeners.tcp.local_v6", "::1:5672"),
            ("listeners.tcp.local", "127.0.0.1:5673"),
        ]);
        let names: Vec<_> = s
            .listeners
            .iter()
            .map(|(n, l)| (n.as_str(), l.port))
            .collect();
        assert_eq!(names, [("local", 5673), ("local_v6", 5672)]);
    }

    #[test]
    fn durations_and_sizes() {
        let s = settings(&[
            ("consumer_timeout", "900000"),
            ("frame_max", "128KiB"),
            ("channel_max", "0"),
            ("queue_memory_limit", "16MiB"),
            ("log.level", "warning"),
        ]);
        assert_eq!(s.consumer_timeout, Some(Duration::from_secs(900)));
        assert_eq!(s.frame_max, Some(131_072));
        assert_eq!(s.channel_max, Some(0));
        assert_eq!(s.queue_memory_limit, Some(16 << 20));
        assert_eq!(s.log_level, Some(LogLevel::Warning));
    }
}
