//! The definitions file of `export_definitions` and `import_definitions`: like rabbitmqctl,
//! `rmqd ctl` reads and writes it, so the path is the operator's, not the daemon's. `-` (and
//! for import, no path at all) is standard input or output.

use std::io::{self, Read, Write};
use std::path::Path;

use super::args::Invocation;

/// A path rabbitmqctl refuses before it runs the command ("Bad argument: ...").
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BadArgument(pub String);

/// Checks what the command will read or write; for an import, reads the document.
pub(super) fn prepare(inv: &Invocation, command: &str) -> Result<Option<String>, BadArgument> {
    if let Some(format) = inv.options.get("format").filter(|f| *f != "json") {
        return Err(BadArgument(format!(
            "format '{format}' is not supported: rmqd reads and writes definitions as JSON"
        )));
    }
    let path = inv.args.first().map(String::as_str);
    match (command, path) {
        ("export_definitions", Some(path)) if path != "-" => {
            let dir = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            match dir.is_dir() {
                true => Ok(None),
                false => Err(BadArgument(format!(
                    "Directory {} does not exist",
                    dir.display()
                ))),
            }
        }
        ("import_definitions", None | Some("-")) => {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .map_err(|err| BadArgument(format!("cannot read standard input: {err}")))?;
            Ok(Some(text))
        }
        ("import_definitions", Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                Err(BadArgument(format!("File {path} does not exist")))
            }
            Err(err) => Err(BadArgument(format!("cannot read {path}: {err}"))),
        },
        _ => Ok(None),
    }
}

/// Writes an exported document where the command line said, as rabbitmqctl does: on one
/// line, without a final newline.
pub(super) fn write_export(inv: &Invocation, document: &str) -> io::Result<()> {
    match inv.args.first().map(String::as_str) {
        Some("-") | None => {
            let mut out = io::stdout().lock();
            out.write_all(document.as_bytes())?;
            out.flush()
        }
        Some(path) => std::fs::write(path, document),
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::parse;
    use super::*;

    fn prepared(line: &str) -> Result<Option<String>, BadArgument> {
        let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
        let inv = parse(&argv).expect("parses");
        prepare(&inv, inv.command.as_deref().expect("a command"))
    }

    #[test]
    fn paths_that_cannot_work_are_refused_before_the_daemon_is_asked() {
        assert_eq!(
            prepared("export_definitions /nonexistent/dir/x.json"),
            Err(BadArgument(
                "Directory /nonexistent/dir does not exist".into()
            ))
        );
        assert_eq!(
            prepared("import_definitions /nonexistent/defs.json"),
            Err(BadArgument(
                "File /nonexistent/defs.json does not exist".into()
            ))
        );
        assert!(prepared("export_definitions --format erlang -").is_err());
    }

    #[test]
    fn an_import_file_is_read_here() {
        let path = std::env::temp_dir().join(format!("rmqd-ctl-defs-{}.json", std::process::id()));
        std::fs::write(&path, "{\"vhosts\":[]}").expect("written");
        let read = prepared(&format!("import_definitions {}", path.display()));
        let _ = std::fs::remove_file(&path);
        assert_eq!(read, Ok(Some("{\"vhosts\":[]}".into())));
        assert_eq!(prepared("export_definitions -"), Ok(None));
    }
}
