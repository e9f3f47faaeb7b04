//! The value syntaxes of rabbitmq.conf that rmqd's keys use: information units, fractions,
//! listeners, log levels.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

/// Why a value was refused, phrased to follow the key and value it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn refuse<T>(text: impl Into<String>) -> Result<T, ValueError> {
    Err(ValueError(text.into()))
}

/// Bytes, with RabbitMQ 3.10's information units: `k`/`kiB`, `M`/`MiB`, `G`/`GiB` are powers
/// of 1024, `kB`, `MB`, `GB` powers of 1000 (rabbit_resource_monitor_misc).
pub fn information_unit(text: &str) -> Result<u64, ValueError> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let multiplier: u64 = match unit {
        "" => 1,
        "k" | "K" | "kiB" | "KiB" | "KIB" | "kib" => 1 << 10,
        "m" | "M" | "MiB" | "MIB" | "mib" => 1 << 20,
        "g" | "G" | "GiB" | "GIB" | "gib" => 1 << 30,
        "kB" | "KB" | "kb" | "Kb" => 1_000,
        "MB" | "mb" | "Mb" => 1_000_000,
        "GB" | "gb" | "Gb" => 1_000_000_000,
        _ => {
            return refuse(format!(
                "'{unit}' is not a unit: use a whole number of bytes, optionally followed by \
                 kB, MB, GB (powers of 1000) or kiB, MiB, GiB (powers of 1024)"
            ));
        }
    };
    if number.is_empty() {
        return refuse("expected a whole number of bytes, such as 50MB or 1GiB");
    }
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .map_or_else(|| refuse("too large"), Ok)
}

/// A number of bytes that must fit `T` (and lie within `min..=max`).
pub fn bytes_within<T: TryFrom<u64>>(text: &str, min: u64, max: u64) -> Result<T, ValueError> {
    let bytes = information_unit(text)?;
    if bytes < min || bytes > max {
        return refuse(format!("must be between {min} and {max} bytes"));
    }
    T::try_from(bytes).map_or_else(|_| refuse("too large"), Ok)
}

/// A whole number in `T`'s range.
pub fn whole<T: FromStr + fmt::Display + Bounded>(text: &str) -> Result<T, ValueError> {
    text.parse().map_or_else(
        |_| {
            refuse(format!(
                "expected a whole number from {} to {}",
                T::MIN_VALUE,
                T::MAX_VALUE
            ))
        },
        Ok,
    )
}

/// The bounds [`whole`] names when a number is out of range.
pub trait Bounded {
    const MIN_VALUE: Self;
    const MAX_VALUE: Self;
}

impl Bounded for u16 {
    const MIN_VALUE: Self = u16::MIN;
    const MAX_VALUE: Self = u16::MAX;
}

/// Milliseconds, at least 1 (RabbitMQ's `non_zero_positive_integer`).
pub fn milliseconds(text: &str) -> Result<Duration, ValueError> {
    match text.parse::<u64>() {
        Ok(0) | Err(_) => refuse("expected a whole number of milliseconds, at least 1"),
        Ok(ms) => Ok(Duration::from_millis(ms)),
    }
}

/// A non-negative decimal number such as 0.4.
pub fn fraction(text: &str) -> Result<f64, ValueError> {
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 0.0 && !text.starts_with(['+', '-']) => Ok(f),
        _ => refuse("expected a decimal number such as 0.4"),
    }
}

pub fn boolean(text: &str) -> Result<bool, ValueError> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => refuse("expected true or false"),
    }
}

/// A limit given in bytes, or relative to the machine's RAM.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Absolute(u64),
    Relative(f64),
}

impl Limit {
    pub fn bytes(self, total_memory: u64) -> u64 {
        match self {
            Limit::Absolute(bytes) => bytes,
            // A fraction of RAM: rounding to a byte is all the precision anyone means.
            Limit::Relative(fraction) => (fraction * total_memory as f64).round() as u64,
        }
    }
}

/// A TCP listener: a port, on every interface unless an address is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub ip: Option<IpAddr>,
    pub port: u16,
}

impl Listener {
    /// RabbitMQ's forms: `5672`, `127.0.0.1:5672`, `::1:5672` (the port follows the last
    /// colon); `[::1]:5672` is accepted too.
    pub fn parse(text: &str) -> Result<Listener, ValueError> {
        let port = |p: &str| {
            p.parse::<u16>()
                .map_or_else(|_| refuse(format!("'{p}' is not a port (0 to 65535)")), Ok)
        };
        let Some((host, port_text)) = text.rsplit_once(':') else {
            return Ok(Listener {
                ip: None,
                port: port(text)?,
            });
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ip = host.parse::<IpAddr>().map_or_else(
            |_| {
                refuse(format!(
                    "'{host}' is not an IP address (expected PORT or IP:PORT)"
                ))
            },
            Ok,
        )?;
        Ok(Listener {
            ip: Some(ip),
            port: port(port_text)?,
        })
    }
}

/// How much rmqd logs. RabbitMQ's level names map onto tracing's levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warning,
    Error,
    None,
}

impl LogLevel {
    /// RabbitMQ's names (debug, info, notice, warning, error, critical, alert, emergency,
    /// none) and tracing's (trace, warn).
    pub fn parse(text: &str) -> Result<LogLevel, ValueError> {
        Ok(match text {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "info" | "notice" => LogLevel::Info,
            "warning" | "warn" => LogLevel::Warning,
            "error" | "critical" | "alert" | "emergency" => LogLevel::Error,
            "none" => LogLevel::None,
            _ => {
                return refuse(
                    "expected one of debug, info, warning, error, critical, none (or trace)",
                );
            }
        })
    }

    /// The `tracing_subscriber` filter directive.
    pub fn directive(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warn",
            LogLevel::Error => "error",
            LogLevel::None => "off",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::None => "none",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn information_units_follow_rabbitmq_3_10() {
        assert_eq!(information_unit("1073741824"), Ok(1 << 30));
        assert_eq!(information_unit("512MiB"), Ok(512 << 20));
        assert_eq!(information_unit("512M"), Ok(512 << 20));
        assert_eq!(information_unit("1GB"), Ok(1_000_000_000));
        assert_eq!(information_unit("50MB"), Ok(50_000_000));
        assert_eq!(information_unit("2k"), Ok(2048));
        assert_eq!(information_unit("2kB"), Ok(2000));
        assert!(information_unit("1.5GB").is_err(), "whole numbers only");
        assert!(
            information_unit("1 GB").is_err(),
            "no space before the unit"
        );
        assert!(
            information_unit("1TB")
                .unwrap_err()
                .0
                .contains("not a unit")
        );
        assert!(information_unit("GB").is_err());
        assert!(information_unit("-1").is_err());
        assert_eq!(information_unit("99999999999G"), refuse("too large"));
    }

    #[test]
    fn sizes_must_fit_their_range() {
        assert_eq!(
            bytes_within::<u32>("128KiB", 0, u32::MAX.into()),
            Ok(128 << 10)
        );
        assert!(bytes_within::<usize>("600MiB", 1, 512 << 20).is_err());
    }

    #[test]
    fn whole_numbers_name_their_range() {
        assert_eq!(whole::<u16>("60"), Ok(60));
        assert_eq!(
            whole::<u16>("70000").unwrap_err().0,
            "expected a whole number from 0 to 65535"
        );
        assert!(whole::<u16>("-1").is_err());
    }

    #[test]
    fn consumer_timeout_is_at_least_one_millisecond() {
        assert_eq!(milliseconds("1800000"), Ok(Duration::from_secs(1800)));
        assert!(milliseconds("0").is_err());
        assert!(milliseconds("1s").is_err());
    }

    #[test]
    fn fractions_are_non_negative_decimals() {
        assert_eq!(fraction("0.4"), Ok(0.4));
        assert_eq!(fraction("1"), Ok(1.0));
        assert!(fraction("-0.4").is_err());
        assert!(fraction("40%").is_err());
        assert!(fraction("NaN").is_err());
    }

    #[test]
    fn relative_limits_scale_with_memory() {
        assert_eq!(Limit::Relative(0.4).bytes(1000), 400);
        assert_eq!(Limit::Relative(1.5).bytes(1000), 1500);
        assert_eq!(Limit::Absolute(7).bytes(1000), 7);
    }

    #[test]
    fn listeners_take_rabbitmqs_forms() {
        assert_eq!(
            Listener::parse("5672"),
            Ok(Listener {
                ip: None,
                port: 5672
            })
        );
        assert_eq!(
            Listener::parse("127.0.0.1:5673"),
            Ok(Listener {
                ip: Some(Ipv4Addr::LOCALHOST.into()),
                port: 5673
            })
        );
        let v6 = Listener {
            ip: Some(Ipv6Addr::LOCALHOST.into()),
            port: 5672,
        };
        assert_eq!(Listener::parse("::1:5672"), Ok(v6));
        assert_eq!(Listener::parse("[::1]:5672"), Ok(v6));
        assert!(
            Listener::parse("localhost:5672")
                .unwrap_err()
                .0
                .contains("IP address")
        );
        assert!(
            Listener::parse("70000")
                .unwrap_err()
                .0
                .contains("not a port")
        );
        assert!(Listener::parse("127.0.0.1:").is_err());
    }

    #[test]
    fn log_levels_map_rabbitmq_names_onto_tracing() {
        assert_eq!(
            LogLevel::parse("warning").map(LogLevel::directive),
            Ok("warn")
        );
        assert_eq!(
            LogLevel::parse("critical").map(LogLevel::directive),
            Ok("error")
        );
        assert_eq!(LogLevel::parse("none").map(LogLevel::directive), Ok("off"));
        assert_eq!(LogLevel::parse("notice"), Ok(LogLevel::Info));
        assert_eq!(LogLevel::parse("warn"), Ok(LogLevel::Warning));
        assert!(LogLevel::parse("verbose").is_err());
        assert_eq!(LogLevel::Warning.to_string(), "warning");
    }
}
