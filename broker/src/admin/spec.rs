//! The commands as data: name, usage, arguments, options and, for listings, columns. The
//! broker checks each request against its spec; `rmqd ctl` prints help from the specs and
//! checks its arguments with them before it reaches the broker, as rabbitmqctl does.

use std::fmt;

use super::{Call, Response};
use crate::broker::Broker;

pub struct CommandSpec {
    pub name: &'static str,
    /// The section of `rabbitmqctl help` the command is listed under.
    pub group: &'static str,
    /// What follows the command name in the usage line.
    pub usage: &'static str,
    pub summary: &'static str,
    /// How many positional arguments it takes, unless they name columns.
    pub min_args: usize,
    pub max_args: Option<usize>,
    pub options: &'static [OptionSpec],
    /// What a table it answers with may show; empty if it answers with none.
    pub columns: &'static [Column],
    /// What the table shows when no columns are named.
    pub default_columns: &'static [&'static str],
    /// Its positional arguments name the columns to show (`list_queues name messages`).
    pub takes_columns: bool,
    pub(crate) run: fn(&Broker, &Call<'_>) -> Response,
}

impl CommandSpec {
    /// A command of `group` taking `min..=max` positional arguments and no options, that
    /// answers without a table; the fields it does not set are changed with `..` where needed.
    pub(crate) const fn plain(
        group: &'static str,
        name: &'static str,
        usage: &'static str,
        summary: &'static str,
        args: (usize, Option<usize>),
        run: fn(&Broker, &Call<'_>) -> Response,
    ) -> CommandSpec {
        CommandSpec {
            name,
            group,
            usage,
            summary,
            min_args: args.0,
            max_args: args.1,
            options: &[],
            columns: &[],
            default_columns: &[],
            takes_columns: false,
            run,
        }
    }

    /// As [`CommandSpec::plain`], taking exactly `args` positional arguments.
    pub(crate) const fn exact(
        group: &'static str,
        name: &'static str,
        usage: &'static str,
        summary: &'static str,
        args: usize,
        run: fn(&Broker, &Call<'_>) -> Response,
    ) -> CommandSpec {
        Self::plain(group, name, usage, summary, (args, Some(args)), run)
    }

    /// A `list_*` command whose positional arguments name the columns to show.
    pub(crate) const fn listing(
        group: &'static str,
        name: &'static str,
        usage: &'static str,
        summary: &'static str,
        columns: &'static [Column],
        default_columns: &'static [&'static str],
        run: fn(&Broker, &Call<'_>) -> Response,
    ) -> CommandSpec {
        CommandSpec {
            columns,
            default_columns,
            takes_columns: true,
            ..Self::plain(group, name, usage, summary, (0, None), run)
        }
    }
}

/// A command's own option, such as `delete_queue --if-empty` (`-e`).
pub struct OptionSpec {
    pub long: &'static str,
    pub short: Option<char>,
    /// Takes a value (`--format json`) rather than being a switch.
    pub takes_value: bool,
}

pub struct Column {
    pub name: &'static str,
    pub render: Render,
}

impl Column {
    pub const fn plain(name: &'static str) -> Column {
        Column {
            name,
            render: Render::Plain,
        }
    }

    pub const fn rendered(name: &'static str, render: Render) -> Column {
        Column { name, render }
    }
}

/// How a cell, given as rabbitmqctl's `--formatter json` prints it, reads in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// Strings as they are, numbers and booleans as JSON writes them, null as nothing.
    Plain,
    /// `["a","b"]` reads `[a, b]` (user tags).
    List,
    /// A field table `[["key","type",value], ...]` reads `[{"key",value}, ...]`.
    FieldTable,
    /// `[127,0,0,1]` reads `127.0.0.1`.
    Address,
    /// `[0,9,1]` reads `{0,9,1}` (the protocol version).
    Tuple,
    /// `{"node":"running"}` reads `[{node, running}]`.
    NodeStates,
}

/// Why a command line or request does not fit its command; the texts are rabbitmqctl's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    NotEnoughArguments,
    TooManyArguments,
    UnknownColumns(Vec<String>),
    InvalidOption(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::NotEnoughArguments => f.write_str("not enough arguments."),
            UsageError::TooManyArguments => f.write_str("too many arguments."),
            UsageError::UnknownColumns(names) => {
                write!(f, "Info key(s) {} are not supported", names.join(","))
            }
            UsageError::InvalidOption(option) => {
                write!(f, "Invalid options for this command:\n{option} : ")
            }
        }
    }
}

impl std::error::Error for UsageError {}

impl CommandSpec {
    pub fn option(&self, long: &str) -> Option<&'static OptionSpec> {
        self.options.iter().find(|o| o.long == long)
    }

    pub fn short_option(&self, short: char) -> Option<&'static OptionSpec> {
        self.options.iter().find(|o| o.short == Some(short))
    }

    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Checks the positional arguments; returns the columns to show: those they name, or
    /// the default ones.
    pub fn check(&self, args: &[String]) -> Result<Vec<&'static Column>, UsageError> {
        if self.takes_columns {
            let names: Vec<&str> = match args {
                [] => self.default_columns.to_vec(),
                // rabbitmqctl also takes `name,messages` and `name, messages`.
                _ => args
                    .iter()
                    .flat_map(|a| a.split(','))
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .collect(),
            };
            let unknown: Vec<String> = names
                .iter()
                .filter(|n| self.column(n).is_none())
                .map(|n| n.to_string())
                .collect();
            if !unknown.is_empty() {
                return Err(UsageError::UnknownColumns(unknown));
            }
            return Ok(names.iter().filter_map(|n| self.column(n)).collect());
        }
        if args.len() < self.min_args {
            return Err(UsageError::NotEnoughArguments);
        }
        if self.max_args.is_some_and(|max| args.len() > max) {
            return Err(UsageError::TooManyArguments);
        }
        Ok(self
            .default_columns
            .iter()
            .filter_map(|n| self.column(n))
            .collect())
    }
}

/// Every command, in help order.
pub fn commands() -> impl Iterator<Item = &'static CommandSpec> {
    [
        super::node::COMMANDS,
        super::users::COMMANDS,
        super::permissions::COMMANDS,
        super::vhosts::COMMANDS,
        super::queues::COMMANDS,
        super::exchanges::COMMANDS,
        super::connections::COMMANDS,
        super::consumers::COMMANDS,
        super::definitions::COMMANDS,
        super::policies::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

pub fn find(name: &str) -> Option<&'static CommandSpec> {
    commands().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_are_unique_and_defaults_are_columns() {
        let mut names: Vec<&str> = commands().map(|c| c.name).collect();
        names.sort();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count);
        for command in commands() {
            for default in command.default_columns {
                assert!(
                    command.column(default).is_some(),
                    "{}: {default}",
                    command.name
                );
            }
        }
    }

    #[test]
    fn listing_columns_come_as_asked_or_as_defaults() {
        let list_queues = find("list_queues").expect("list_queues");
        let names = |args: &[&str]| -> Result<Vec<&str>, UsageError> {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            Ok(list_queues.check(&args)?.iter().map(|c| c.name).collect())
        };
        assert_eq!(names(&[]), Ok(vec!["name", "messages"]));
        assert_eq!(names(&["durable", "name"]), Ok(vec!["durable", "name"]));
        assert_eq!(names(&["name,consumers"]), Ok(vec!["name", "consumers"]));
        assert_eq!(
            names(&["name", "bogus", "other"]),
            Err(UsageError::UnknownColumns(vec![
                "bogus".into(),
                "other".into()
            ]))
        );
        assert_eq!(
            UsageError::UnknownColumns(vec!["bogus".into(), "other".into()]).to_string(),
            "Info key(s) bogus,other are not supported"
        );
    }
}
