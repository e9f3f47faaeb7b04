//! `rmqd ctl`: rabbitmqctl's commands, options and output, sent to a running rmqd over its
//! ctl socket. The broker runs the command (see `rmqd_broker::admin`); this reads the command
//! line (`args`), prints help (`help`), reads and writes definitions files (`definitions`),
//! and prints the answer as rabbitmqctl would (`output`, `table`).

mod args;
mod definitions;
mod help;
mod output;
mod table;

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use rmqd_broker::admin::spec::{self, CommandSpec};
use rmqd_broker::admin::{Failure, Request, Response, node_name};

use args::{ArgsError, Invocation};

/// sysexits' code for a timeout, as rabbitmqctl gives it; the others are [`Failure`]'s.
const EX_TEMPFAIL: u8 = 75;

/// `argv` is `ctl` and what follows it; `default_socket` says where the daemon listens when
/// `--socket` does not, and is asked only then.
pub fn main(argv: Vec<OsString>, default_socket: impl FnOnce() -> PathBuf) -> ExitCode {
    let argv: Vec<String> = argv
        .into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let inv = match args::parse(&argv) {
        Ok(inv) => inv,
        Err(ArgsError::Formatter(name)) => {
            eprintln!("Error: rmqd ctl has no formatter '{name}': use table or json");
            return failed(Failure::Usage);
        }
        Err(ArgsError::Usage(err)) => {
            let command = argv.iter().find_map(|a| spec::find(a));
            return match command {
                Some(command) => usage_error(&err.to_string(), &argv, command, Failure::Usage),
                None => {
                    eprintln!("Error (argument validation): {err}");
                    failed(Failure::Usage)
                }
            };
        }
    };
    let mut stdout = io::stdout().lock();
    let Some(name) = inv.command.as_deref() else {
        // Asked for, help is an answer; without a command it explains a mistake.
        return match inv.help {
            true => exit_after(help::general(&mut stdout), 0),
            false => exit_after(
                help::general(&mut io::stderr().lock()),
                Failure::Usage.exit_code(),
            ),
        };
    };
    if name == "help" {
        let printed = match inv.args.first() {
            Some(name) => match spec::find(name) {
                Some(command) => help::command(&mut stdout, command),
                None => help::unknown_command(&mut stdout, name),
            },
            None => help::general(&mut stdout),
        };
        return exit_after(printed, 0);
    }
    let Some(command) = spec::find(name) else {
        return exit_after(
            help::unknown_command(&mut stdout, name),
            Failure::Usage.exit_code(),
        );
    };
    if inv.help {
        return exit_after(help::command(&mut stdout, command), 0);
    }
    drop(stdout);
    if let Err(err) = command.check(&inv.args) {
        return usage_error(&err.to_string(), &argv, command, Failure::Usage);
    }
    let document = match definitions::prepare(&inv, command.name) {
        Ok(document) => document,
        Err(definitions::BadArgument(why)) => {
            return usage_error(
                &format!("Bad argument: {why}"),
                &argv,
                command,
                Failure::DataErr,
            );
        }
    };
    run(&inv, command, document, default_socket)
}

/// Sends the command to the daemon and prints its answer.
fn run(
    inv: &Invocation,
    command: &CommandSpec,
    document: Option<String>,
    default_socket: impl FnOnce() -> PathBuf,
) -> ExitCode {
    let socket = inv.socket.clone().unwrap_or_else(default_socket);
    let connected = match command.name {
        "await_startup" => connect_when_up(&socket, inv.timeout),
        _ => connect(&socket, inv.timeout),
    };
    let stream = match connected {
        Ok(stream) => stream,
        Err(err) => {
            eprintln!(
                "Error: unable to reach rmqd through its ctl socket {}: {err}\n\
                 Is rmqd running? Start it with `rmqd`, or give the socket with --socket or \
                 RMQD_CTL_SOCKET.",
                socket.display()
            );
            return failed(Failure::Unavailable);
        }
    };
    if !inv.quiet()
        && let Some(banner) = output::banner(inv, command.name)
    {
        println!("{banner}");
    }
    let request = Request {
        command: command.name.to_string(),
        args: inv.args.clone(),
        vhost: inv.vhost.clone(),
        options: inv.options.clone(),
        document,
    };
    let response = match call(&stream, &request) {
        Ok(response) => response,
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            eprintln!(
                "Error: operation {} on node {} timed out. Timeout value used: {}",
                command.name,
                node_name(),
                inv.timeout.map_or(0, |t| (t * 1000.0) as u64)
            );
            return ExitCode::from(EX_TEMPFAIL);
        }
        Err(err) => {
            eprintln!("Error: the ctl socket {} failed: {err}", socket.display());
            return failed(Failure::Unavailable);
        }
    };
    if !response.ok {
        let error = response.error.as_deref().unwrap_or("the command failed");
        match response.bare_error {
            true => eprintln!("{error}"),
            false => eprintln!("Error:\n{error}"),
        }
        return failed(response.failure.unwrap_or(Failure::Software));
    }
    if let Some(document) = &response.document
        && let Err(err) = definitions::write_export(inv, document)
    {
        eprintln!("Error:\n{err}");
        return failed(Failure::Software);
    }
    let printed = output::print_success(&mut io::stdout().lock(), inv, command, &response);
    exit_after(printed, 0)
}

fn connect(socket: &Path, timeout: Option<f64>) -> io::Result<UnixStream> {
    let stream = UnixStream::connect(socket)?;
    let timeout = timeout.filter(|t| *t > 0.0).map(Duration::from_secs_f64);
    stream.set_read_timeout(timeout)?;
    Ok(stream)
}

/// How long `await_startup` waits for the daemon without `--timeout`, as rabbitmqctl.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(300);

/// Connects once the daemon has opened its socket: `rmqd ctl await_startup` right after
/// starting rmqd waits for it rather than failing.
fn connect_when_up(socket: &Path, timeout: Option<f64>) -> io::Result<UnixStream> {
    let patience = timeout
        .filter(|t| *t > 0.0)
        .map_or(STARTUP_TIMEOUT, Duration::from_secs_f64);
    let deadline = std::time::Instant::now() + patience;
    loop {
        match connect(socket, timeout) {
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            result => return result,
        }
    }
}

fn call(stream: &UnixStream, request: &Request) -> io::Result<Response> {
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    let mut writer = stream;
    writer.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    Ok(serde_json::from_str(&answer)?)
}

fn usage_error(error: &str, argv: &[String], command: &CommandSpec, why: Failure) -> ExitCode {
    let printed = help::argument_error(&mut io::stderr().lock(), error, argv, command);
    exit_after(printed, why.exit_code())
}

fn failed(why: Failure) -> ExitCode {
    ExitCode::from(why.exit_code())
}

/// The exit code, unless printing failed; a reader that went away (`| head`) is no failure.
fn exit_after(printed: io::Result<()>, code: u8) -> ExitCode {
    match printed {
        Err(err) if err.kind() != io::ErrorKind::BrokenPipe => failed(Failure::Software),
        _ => ExitCode::from(code),
    }
}
