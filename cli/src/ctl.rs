//! `rmqd ctl`: rabbitmqctl's commands, options and output, sent to a running rmqd over its
//! ctl socket. The broker runs the command (see `rmqd_broker::admin`); this prints the answer
//! as rabbitmqctl would: an info line, then a tab-separated table with a header, or JSON.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rmqd_broker::admin::{Request, Response};
use serde_json::Value;

/// sysexits codes, as rabbitmqctl uses them.
const EX_USAGE: u8 = 64;
const EX_UNAVAILABLE: u8 = 69;
const EX_SOFTWARE: u8 = 70;

#[derive(Debug, Parser)]
#[command(
    name = "rmqd ctl",
    about = "Administer a running rmqd with rabbitmqctl's commands",
    after_help = "Commands: status, await_startup, list_vhosts, add_vhost, delete_vhost, \
                  set_permissions.\nThe daemon is reached over its ctl socket (--socket, \
                  $RMQD_CTL_SOCKET, else rmqd.sock in the default data dir)."
)]
struct CtlArgs {
    /// The vhost a command applies to (rabbitmqctl's -p).
    #[arg(short = 'p', long = "vhost", value_name = "VHOST")]
    vhost: Option<String>,
    /// Leave out informational messages.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Leave out informational messages and table headers.
    #[arg(short = 's', long)]
    silent: bool,
    /// Leave out table headers.
    #[arg(long)]
    no_table_headers: bool,
    /// Output format.
    #[arg(long, value_parser = ["table", "json"], default_value = "table")]
    formatter: String,
    /// The daemon's ctl socket.
    #[arg(long, value_name = "PATH", env = "RMQD_CTL_SOCKET")]
    socket: Option<PathBuf>,
    /// A rabbitmqctl command name.
    command: String,
    /// The command's arguments (and, for list_* commands, the columns to show).
    args: Vec<String>,
}

pub fn main(argv: Vec<std::ffi::OsString>, default_socket: PathBuf) -> ExitCode {
    let args = match CtlArgs::try_parse_from(argv) {
        Ok(args) => args,
        Err(err) => {
            let _ = err.print();
            return match err.use_stderr() {
                true => ExitCode::from(EX_USAGE),
                false => ExitCode::SUCCESS,
            };
        }
    };
    let socket = args.socket.clone().unwrap_or(default_socket);
    let request = Request {
        command: args.command.clone(),
        args: args.args.clone(),
        vhost: args.vhost.clone(),
    };
    let quiet = args.quiet || args.silent || args.formatter == "json";
    if !quiet && let Some(info) = banner(&request) {
        println!("{info}");
    }
    let response = match call(&socket, &request) {
        Ok(response) => response,
        Err(err) => {
            eprintln!(
                "Error: unable to reach rmqd through its ctl socket {}: {err}\n\
                 Is rmqd running? Start it with `rmqd`, or give the socket with --socket or \
                 RMQD_CTL_SOCKET.",
                socket.display()
            );
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    if !response.ok {
        eprintln!(
            "Error:\n{}",
            response.error.as_deref().unwrap_or("the command failed")
        );
        return ExitCode::from(EX_SOFTWARE);
    }
    let headers = !(args.silent || args.no_table_headers);
    let mut out = std::io::stdout().lock();
    let printed = match args.formatter.as_str() {
        "json" => print_json(&mut out, &response),
        _ => print_table(&mut out, &response, headers),
    };
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(EX_SOFTWARE),
    }
}

fn call(socket: &PathBuf, request: &Request) -> std::io::Result<Response> {
    let stream = UnixStream::connect(socket)?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    (&stream).write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    Ok(serde_json::from_str(&answer)?)
}

/// The "doing this ..." line rabbitmqctl prints first.
fn banner(request: &Request) -> Option<String> {
    let arg = |n: usize| request.args.get(n).map(String::as_str).unwrap_or("");
    let vhost = request.vhost.as_deref().unwrap_or("/");
    Some(match request.command.as_str() {
        "list_vhosts" => "Listing vhosts ...".to_string(),
        "add_vhost" => format!("Adding vhost \"{}\" ...", arg(0)),
        "delete_vhost" => format!("Deleting vhost \"{}\" ...", arg(0)),
        "set_permissions" => format!(
            "Setting permissions for user \"{}\" in vhost \"{vhost}\" ...",
            arg(0)
        ),
        "status" => "Status of node rmqd ...".to_string(),
        _ => return None,
    })
}

fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn print_table(out: &mut impl Write, response: &Response, headers: bool) -> std::io::Result<()> {
    if response.columns.is_empty() {
        return Ok(());
    }
    if headers {
        writeln!(out, "{}", response.columns.join("\t"))?;
    }
    for row in &response.rows {
        let cells: Vec<String> = row.iter().map(cell).collect();
        writeln!(out, "{}", cells.join("\t"))?;
    }
    Ok(())
}

/// A JSON array of objects keyed by column, as `--formatter json` prints.
fn print_json(out: &mut impl Write, response: &Response) -> std::io::Result<()> {
    let objects: Vec<Value> = response
        .rows
        .iter()
        .map(|row| {
            Value::Object(
                response
                    .columns
                    .iter()
                    .cloned()
                    .zip(row.iter().cloned())
                    .collect(),
            )
        })
        .collect();
    writeln!(out, "{}", Value::Array(objects))
}
