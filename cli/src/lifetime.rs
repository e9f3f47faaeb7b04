//! When rmqd tells its starter it is ready, and what makes it stop: SIGTERM or Ctrl-C, its
//! stdin closing (when stdin is a pipe or socket), or its parent exiting.

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::info;

/// How often `--exit-with-parent` checks that the parent is still there.
const PARENT_POLL: Duration = Duration::from_millis(200);

/// A host a client can connect to for a listener bound to `ip` (the loopback address for a
/// wildcard bind).
pub fn connectable_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_string(),
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    #[error("cannot write the ready file {path}: {source}")]
    ReadyFile {
        path: std::path::PathBuf,
        source: io::Error,
    },
}

/// Prints the URL as the one line on stdout, and writes it to `ready_file` if asked: written
/// to a temporary name and renamed, so a watcher never reads half a line.
pub fn announce_ready(url: &str, ready_file: Option<&Path>) -> Result<(), ReadyError> {
    // A starter that has gone away (closed pipe) is no reason to fail.
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{url}").and_then(|()| stdout.flush());
    if let Some(path) = ready_file {
        let error = |source| ReadyError::ReadyFile {
            path: path.to_path_buf(),
            source,
        };
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        std::fs::write(&partial, format!("{url}\n")).map_err(error)?;
        std::fs::rename(&partial, path).map_err(error)?;
    }
    Ok(())
}

/// Resolves when rmqd should shut down.
pub async fn stop_requested(exit_with_parent: bool) {
    let reason = tokio::select! {
        () = shutdown_signal() => "signal",
        () = stdin_closed() => "stdin closed",
        () = parent_exited(), if exit_with_parent => "parent process exited",
    };
    info!("stopping: {reason}");
}

/// Resolves when a piped stdin reaches its end; never for any other stdin.
async fn stdin_closed() {
    if stdin_is_a_pipe() {
        let (closed, at_end) = oneshot::channel::<()>();
        // A blocking read: tokio's stdin is a thread underneath too.
        let reader = std::thread::Builder::new()
            .name("rmqd-stdin".into())
            .spawn(move || {
                let mut sink = [0u8; 256];
                let mut stdin = io::stdin();
                while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
                let _ = closed.send(());
            });
        if reader.is_ok() && at_end.await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

/// Resolves when the process that started rmqd is gone: an orphan is adopted by init or a
/// subreaper, so its parent id changes.
async fn parent_exited() {
    let parent = std::os::unix::process::parent_id();
    let mut tick = tokio::time::interval(PARENT_POLL);
    while std::os::unix::process::parent_id() == parent {
        tick.tick().await;
    }
}

/// Only a pipe or socket on stdin means a starter waiting on us: a terminal, /dev/null (as
/// under systemd) or a file must not stop a daemon.
fn stdin_is_a_pipe() -> bool {
    let stdin = io::stdin();
    let Ok(fd) = stdin.as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .map(|m| m.file_type().is_fifo() || m.file_type().is_socket())
        .unwrap_or(false)
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
