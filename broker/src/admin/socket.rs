//! The administration socket: a Unix stream socket, readable and writable by the broker's
//! owner only (mode 0600), carrying one JSON [`Request`] per line and one JSON [`Response`]
//! per line back. File permissions are the access control, as with the Docker socket; no
//! credentials travel.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, warn};

use super::{Failure, Request, Response, execute};
use crate::broker::Broker;

/// A bound administration socket; the file is removed when this is dropped.
pub struct AdminSocket {
    listener: UnixListener,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminSocketError {
    #[error("another rmqd is already answering on {0}")]
    InUse(PathBuf),
    #[error("cannot listen on {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
}

impl AdminSocket {
    /// Binds `path`, replacing a socket file a crashed broker left behind, but never one a
    /// live broker answers on.
    pub async fn bind(path: &Path) -> Result<AdminSocket, AdminSocketError> {
        let bind_error = |source| AdminSocketError::Bind {
            path: path.to_path_buf(),
            source,
        };
        if path.exists() {
            if UnixStream::connect(path).await.is_ok() {
                return Err(AdminSocketError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(bind_error)?;
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(bind_error)?;
        // Bound inside a directory only this user may enter, made owner-only there, then moved
        // into place: under a permissive umask, a socket bound at `path` itself would be open
        // to others until its mode was changed.
        let staging = dir.join(format!(".ctl.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .map_err(bind_error)?;
        let staged = staging.join("s");
        let bound = UnixListener::bind(&staged).and_then(|listener| {
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(&staged, path)?;
            Ok(listener)
        });
        let _ = std::fs::remove_dir_all(&staging);
        let listener = bound.map_err(bind_error)?;
        Ok(AdminSocket {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// Answers requests until the returned future is dropped.
    pub async fn serve(self, broker: Arc<Broker>) {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream, Arc::clone(&broker)));
                }
                Err(err) => {
                    warn!("admin socket accept failed: {err}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn answer(stream: UnixStream, broker: Arc<Broker>) {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader);
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.trim().is_empty() {
            continue;
        }
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(request) => {
                debug!(command = %request.command, args = ?request.args, "admin command");
                // A command may take a while (an import writing to disk, a listing of many
                // queues): off the threads that serve AMQP.
                let broker = Arc::clone(&broker);
                tokio::task::spawn_blocking(move || execute(&broker, &request))
                    .await
                    .unwrap_or_else(|err| {
                        Response::failed(Failure::Software, format!("the command failed: {err}"))
                    })
            }
            Err(err) => Response::failed(Failure::Usage, format!("malformed request: {err}")),
        };
        let mut out = serde_json::to_vec(&response).unwrap_or_default();
        out.push(b'\n');
        if writer.write_all(&out).await.is_err() {
            return;
        }
    }
}
