//! rabbitmqctl's command line: general options anywhere (`-p`, `-q`, `-s`, `--formatter`, ...),
//! the command, its own options (`delete_queue --if-empty`), and positional arguments.
//! Options that only matter to a cluster (`--node`, `--longnames`) are taken and ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rmqd_broker::admin::spec::{self, CommandSpec, UsageError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Formatter {
    Table,
    Json,
}

/// A parsed command line.
#[derive(Debug)]
pub(super) struct Invocation {
    pub command: Option<String>,
    pub args: Vec<String>,
    pub vhost: Option<String>,
    pub quiet: bool,
    pub silent: bool,
    pub no_table_headers: bool,
    pub formatter: Formatter,
    /// `-t`, in seconds.
    pub timeout: Option<f64>,
    pub socket: Option<PathBuf>,
    pub help: bool,
    /// The command's own options by long name; a switch's value is `true`.
    pub options: BTreeMap<String, String>,
}

impl Invocation {
    /// The first word is the command, the rest its arguments.
    fn positional(&mut self, token: &str) {
        match self.command {
            None => self.command = Some(token.to_string()),
            Some(_) => self.args.push(token.to_string()),
        }
    }

    /// No informational lines: `-q`, `-s`, or JSON output.
    pub fn quiet(&self) -> bool {
        self.quiet || self.silent || self.formatter == Formatter::Json
    }

    pub fn table_headers(&self) -> bool {
        !(self.silent || self.no_table_headers)
    }

    pub fn vhost(&self) -> &str {
        self.vhost.as_deref().unwrap_or("/")
    }
}

/// Why the command line could not be read.
#[derive(Debug, PartialEq)]
pub(super) enum ArgsError {
    Usage(UsageError),
    /// `--formatter` names one rmqd does not have.
    Formatter(String),
}

/// What a general option sets in the [`Invocation`].
#[derive(Debug, Clone, Copy)]
enum Sets {
    Help,
    Socket,
    Timeout,
    Quiet,
    Silent,
    Vhost,
    Formatter,
    NoTableHeaders,
    /// One node, reached over its socket: which node and how it is named do not matter.
    Nothing,
}

/// An option every command takes, before or after the command.
pub(super) struct GeneralOption {
    /// Short names (`-p`) first, then the long one.
    pub names: &'static [&'static str],
    takes_value: bool,
    /// What the help shows after the option's names (`<n>`), if anything.
    pub placeholder: &'static str,
    /// Its description in the help, a line each; empty: the help leaves it out.
    pub help: &'static [&'static str],
    sets: Sets,
}

/// rabbitmqctl's general options, in the order the help lists them.
pub(super) const GENERAL_OPTIONS: &[GeneralOption] = &[
    GeneralOption {
        names: &["-?", "-h", "--help"],
        takes_value: false,
        placeholder: "",
        help: &["displays command help"],
        sets: Sets::Help,
    },
    GeneralOption {
        names: &["--socket"],
        takes_value: true,
        placeholder: "",
        help: &["the daemon's ctl socket (also $RMQD_CTL_SOCKET)"],
        sets: Sets::Socket,
    },
    GeneralOption {
        names: &["-t", "--timeout"],
        takes_value: true,
        placeholder: "<n>",
        help: &["how long to wait for the daemon, in seconds"],
        sets: Sets::Timeout,
    },
    GeneralOption {
        names: &["-q", "--quiet"],
        takes_value: false,
        placeholder: "",
        help: &["suppress informational messages"],
        sets: Sets::Quiet,
    },
    GeneralOption {
        names: &["-s", "--silent"],
        takes_value: false,
        placeholder: "",
        help: &["suppress informational messages", "and table header row"],
        sets: Sets::Silent,
    },
    GeneralOption {
        names: &["-p", "--vhost"],
        takes_value: true,
        placeholder: "",
        help: &[
            "for commands that are scoped to a virtual host,",
            "virtual host to use",
        ],
        sets: Sets::Vhost,
    },
    GeneralOption {
        names: &["--formatter"],
        takes_value: true,
        placeholder: "",
        help: &["alternative result formatter to use: table or json"],
        sets: Sets::Formatter,
    },
    GeneralOption {
        names: &["-n", "--node"],
        takes_value: true,
        placeholder: "<node>",
        help: &["accepted and ignored: rmqd is one node"],
        sets: Sets::Nothing,
    },
    GeneralOption {
        names: &["-l", "--longnames"],
        takes_value: false,
        placeholder: "",
        help: &["accepted and ignored"],
        sets: Sets::Nothing,
    },
    GeneralOption {
        names: &["--no-table-headers"],
        takes_value: false,
        placeholder: "",
        help: &[],
        sets: Sets::NoTableHeaders,
    },
];

fn general_option(name: &str) -> Option<&'static GeneralOption> {
    GENERAL_OPTIONS.iter().find(|o| o.names.contains(&name))
}

pub(super) fn parse(argv: &[String]) -> Result<Invocation, ArgsError> {
    let spec = spec::find(find_command(argv).unwrap_or_default());
    let mut inv = Invocation {
        command: None,
        args: Vec::new(),
        vhost: None,
        quiet: false,
        silent: false,
        no_table_headers: false,
        formatter: Formatter::Table,
        timeout: None,
        socket: None,
        help: false,
        options: BTreeMap::new(),
    };
    let mut tokens = argv.iter();
    while let Some(token) = tokens.next() {
        if token == "--" {
            for token in tokens.by_ref() {
                inv.positional(token);
            }
            break;
        }
        if !token.starts_with('-') || token == "-" {
            inv.positional(token);
            continue;
        }
        let (name, attached) = match token.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_string())),
            _ => (token.as_str(), None),
        };
        let invalid = || ArgsError::Usage(UsageError::InvalidOption(name.to_string()));
        let mut value = |takes: bool| -> Result<String, ArgsError> {
            match (&attached, takes) {
                (Some(v), true) => Ok(v.clone()),
                (None, true) => tokens.next().cloned().ok_or_else(invalid),
                (None, false) => Ok("true".to_string()),
                (Some(_), false) => Err(invalid()),
            }
        };
        let Some(option) = general_option(name) else {
            let option = command_option(spec, name).ok_or_else(invalid)?;
            let value = value(option.takes_value)?;
            inv.options.insert(option.long.to_string(), value);
            continue;
        };
        // A general switch takes no value, but ignores one given (`--quiet=true`).
        let value = match option.takes_value {
            true => value(true)?,
            false => String::new(),
        };
        match option.sets {
            Sets::Help => inv.help = true,
            Sets::Socket => inv.socket = Some(PathBuf::from(value)),
            Sets::Timeout => inv.timeout = Some(value.parse().map_err(|_| invalid())?),
            Sets::Quiet => inv.quiet = true,
            Sets::Silent => inv.silent = true,
            Sets::Vhost => inv.vhost = Some(value),
            Sets::Formatter => {
                inv.formatter = match value.as_str() {
                    "table" | "pretty_table" => Formatter::Table,
                    "json" => Formatter::Json,
                    other => return Err(ArgsError::Formatter(other.to_string())),
                }
            }
            Sets::NoTableHeaders => inv.no_table_headers = true,
            Sets::Nothing => {}
        }
    }
    Ok(inv)
}

fn command_option(
    spec: Option<&'static CommandSpec>,
    name: &str,
) -> Option<&'static spec::OptionSpec> {
    let spec = spec?;
    match name.strip_prefix("--") {
        Some(long) => spec.option(long),
        None => {
            let mut short = name.strip_prefix('-')?.chars();
            match (short.next(), short.next()) {
                (Some(c), None) => spec.short_option(c),
                _ => None,
            }
        }
    }
}

/// The command's name, found before the options are read, since its own options depend on
/// it: the first word that is neither an option nor a general option's value.
fn find_command(argv: &[String]) -> Option<&str> {
    let mut tokens = argv.iter();
    while let Some(token) = tokens.next() {
        if token == "--" {
            return tokens.next().map(String::as_str);
        }
        if general_option(token).is_some_and(|o| o.takes_value) {
            tokens.next();
        } else if !token.starts_with('-') || token == "-" {
            return Some(token);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Invocation {
        let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse(&argv).expect("parses")
    }

    #[test]
    fn general_options_go_before_or_after_the_command() {
        let inv = parsed("-q list_queues -p orders name --formatter=json messages");
        assert_eq!(inv.command.as_deref(), Some("list_queues"));
        assert_eq!(inv.args, ["name", "messages"]);
        assert_eq!(inv.vhost(), "orders");
        assert_eq!(inv.formatter, Formatter::Json);
        assert!(inv.quiet());
    }

    #[test]
    fn command_options_are_known_by_long_and_short_name() {
        let inv = parsed("delete_queue -e q --if-unused");
        assert_eq!(inv.args, ["q"]);
        assert_eq!(
            inv.options.keys().collect::<Vec<_>>(),
            ["if-empty", "if-unused"]
        );
        let inv = parsed("export_definitions - --format json");
        assert_eq!(inv.args, ["-"]);
        assert_eq!(inv.options.get("format").map(String::as_str), Some("json"));
    }

    #[test]
    fn cluster_options_are_taken_and_ignored() {
        let inv = parsed("-n rabbit@host --longnames list_vhosts -t 5");
        assert_eq!(inv.command.as_deref(), Some("list_vhosts"));
        assert!(inv.args.is_empty());
        assert_eq!(inv.timeout, Some(5.0));
    }

    #[test]
    fn an_option_the_command_lacks_is_refused_by_name() {
        let argv: Vec<String> = ["list_queues", "--if-empty"].map(String::from).to_vec();
        assert_eq!(
            parse(&argv).err(),
            Some(ArgsError::Usage(UsageError::InvalidOption(
                "--if-empty".into()
            )))
        );
        let argv: Vec<String> = ["list_queues", "-p"].map(String::from).to_vec();
        assert_eq!(
            parse(&argv).err(),
            Some(ArgsError::Usage(UsageError::InvalidOption("-p".into())))
        );
    }

    #[test]
    fn after_a_double_dash_everything_is_an_argument() {
        let inv = parsed("add_user bob -- -secret-");
        assert_eq!(inv.args, ["bob", "-secret-"]);
    }
}
