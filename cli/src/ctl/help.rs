//! `rmqd ctl help`, `rmqd ctl help COMMAND`, and the usage rabbitmqctl prints after an
//! argument it cannot take: all from the command specs the broker runs.

use std::io::{self, Write};

use rmqd_broker::admin::spec::{self, CommandSpec};

use super::args::GENERAL_OPTIONS;

const GENERAL_USAGE: &str = "rmqd ctl [--socket <path>] [--quiet] [--silent] [--vhost <vhost>] \
     [--formatter <table | json>] [--timeout <seconds>] <command> [<command options>]";

const GENERAL_OPTIONS_HEADER: &str = "\
General Options

The following options are accepted by most or all commands.

short            | long          | description
-----------------|---------------|--------------------------------";

/// The table of general options rabbitmqctl prints after a command's own.
fn general_options(out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "\n{GENERAL_OPTIONS_HEADER}")?;
    for option in GENERAL_OPTIONS {
        // The first short name and the long one, each with the placeholder.
        let column = |long: bool| {
            let name = option.names.iter().find(|n| n.starts_with("--") == long);
            name.map_or(String::new(), |name| {
                format!("{name} {}", option.placeholder)
                    .trim_end()
                    .to_string()
            })
        };
        let mut columns = (column(false), column(true));
        for line in option.help {
            writeln!(out, "{:<17}| {:<14}| {line}", columns.0, columns.1)?;
            columns = Default::default();
        }
    }
    writeln!(out)
}

/// Every command, by group, with its summary.
pub(super) fn general(out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "\nUsage\n\n{GENERAL_USAGE}\n\nAvailable commands:\n")?;
    let mut groups: Vec<&str> = Vec::new();
    for command in spec::commands() {
        if !groups.contains(&command.group) {
            groups.push(command.group);
        }
    }
    for group in groups {
        writeln!(out, "{group}:\n")?;
        let mut commands: Vec<&CommandSpec> =
            spec::commands().filter(|c| c.group == group).collect();
        commands.sort_by_key(|c| c.name);
        for command in commands {
            writeln!(out, "   {:<29} {}", command.name, command.summary)?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Use 'rmqd ctl help <command>' to learn more about a specific command"
    )
}

pub(super) fn usage_line(command: &CommandSpec) -> String {
    format!("rmqd ctl [--quiet] {} {}", command.name, command.usage)
        .trim_end()
        .to_string()
}

/// One command: usage, summary, the columns a listing may show, its options.
pub(super) fn command(out: &mut impl Write, command: &CommandSpec) -> io::Result<()> {
    let summary = command.summary.trim_end_matches('.');
    writeln!(out, "\nUsage\n\n{}\n\n{summary}.\n", usage_line(command))?;
    if command.takes_columns || !command.options.is_empty() {
        writeln!(out, "\nArguments and Options\n")?;
    }
    if command.takes_columns {
        let names: Vec<&str> = command.columns.iter().map(|c| c.name).collect();
        writeln!(out, "<column>\n\tmust be one of {}\n", names.join(", "))?;
        writeln!(out, "\tdefault: {}\n", command.default_columns.join(", "))?;
    }
    for option in command.options {
        match (option.short, option.takes_value) {
            (Some(short), _) => writeln!(out, "--{} (-{short})", option.long)?,
            (None, true) => writeln!(out, "--{} <value>", option.long)?,
            (None, false) => writeln!(out, "--{}", option.long)?,
        }
    }
    general_options(out)
}

/// After a command line that does not fit its command, on stderr.
pub(super) fn argument_error(
    out: &mut impl Write,
    error: &str,
    given: &[String],
    command: &CommandSpec,
) -> io::Result<()> {
    writeln!(
        out,
        "Error (argument validation): {error}\nArguments given:\n\t{}\n\nUsage\n\n{}",
        given.join(" "),
        usage_line(command)
    )
}

/// For a command rmqd does not have, on stdout as rabbitmqctl prints it.
pub(super) fn unknown_command(out: &mut impl Write, name: &str) -> io::Result<()> {
    writeln!(out, "\nCommand '{name}' not found. ")?;
    general(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn general_help_lists_every_command_under_its_group() {
        let mut out = Vec::new();
        general(&mut out).expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        for command in spec::commands() {
            assert!(
                text.contains(&format!("   {:<29} ", command.name)),
                "{}",
                command.name
            );
        }
        assert!(text.contains("\nUsers:\n\n   add_user "));
    }

    #[test]
    fn command_help_names_the_columns_a_listing_takes() {
        let mut out = Vec::new();
        command(&mut out, spec::find("list_queues").expect("list_queues")).expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains("must be one of name, type, durable"),
            "{text}"
        );
        assert!(text.contains("default: name, messages"), "{text}");
    }

    #[test]
    fn command_help_ends_with_the_general_options_as_a_table() {
        let mut out = Vec::new();
        command(&mut out, spec::find("status").expect("status")).expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        for row in [
            "-?               | --help        | displays command help\n",
            "                 | --socket      | the daemon's ctl socket (also $RMQD_CTL_SOCKET)\n",
            "-t <n>           | --timeout <n> | how long to wait for the daemon, in seconds\n",
            "-p               | --vhost       | for commands that are scoped to a virtual host,\n",
            "                 |               | virtual host to use\n",
        ] {
            assert!(text.contains(row), "{row:?} in {text}");
        }
        assert!(!text.contains("no-table-headers"), "{text}");
    }
}
