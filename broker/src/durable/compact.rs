//! Rewriting the topology log as just what exists, so that years of declares and deletes do not
//! make it grow (and replay) without bound. The new log is written and fsynced beside the old
//! one and swapped in by two renames; a crash at any point leaves one complete log, which
//! [`settle_leftovers`] picks at the next start.

use std::fs;
use std::io;
use std::path::Path;

use bytes::Bytes;

use crate::store::{LogConfig, SegmentLog, StoreError};

const LIVE: &str = "meta";
const NEW: &str = "meta.new";
const OLD: &str = "meta.old";

/// Finishes or undoes a rewrite a crash interrupted. Run before opening `meta/`.
pub(super) fn settle_leftovers(dir: &Path) -> io::Result<()> {
    let (live, new, old) = (dir.join(LIVE), dir.join(NEW), dir.join(OLD));
    if new.exists() {
        if live.exists() {
            // The new log may be incomplete: the old one is still the truth.
            fs::remove_dir_all(&new)?;
        } else {
            // Crashed between the two renames: the new log was complete before them.
            fs::rename(&new, &live)?;
            sync_dir(dir)?;
        }
    }
    if old.exists() {
        fs::remove_dir_all(&old)?;
    }
    Ok(())
}

/// Writes `records` as a fresh topology log and swaps it for the one in `dir`, which the caller
/// has closed. Returns the new log, open for appends.
pub(super) fn rewrite(dir: &Path, records: Vec<(u8, Bytes)>) -> Result<SegmentLog, StoreError> {
    let io_error =
        |action: &'static str, path: &Path, err: io::Error| StoreError::io(action, path, err);
    let (live, new, old) = (dir.join(LIVE), dir.join(NEW), dir.join(OLD));
    if new.exists() {
        fs::remove_dir_all(&new).map_err(|e| io_error("removing", &new, e))?;
    }
    let fresh = SegmentLog::open(&new, LogConfig::default(), |_| {})?;
    for (kind, payload) in records {
        fresh.append_durable(kind, payload)?;
    }
    fresh.close()?;
    fs::rename(&live, &old).map_err(|e| io_error("renaming", &live, e))?;
    fs::rename(&new, &live).map_err(|e| io_error("renaming", &new, e))?;
    sync_dir(dir).map_err(|e| io_error("syncing", dir, e))?;
    fs::remove_dir_all(&old).map_err(|e| io_error("removing", &old, e))?;
    SegmentLog::open(&live, LogConfig::default(), |_| {})
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkdir(dir: &Path, name: &str) {
        fs::create_dir_all(dir.join(name)).unwrap();
        fs::write(dir.join(name).join("marker"), name).unwrap();
    }

    fn marker(dir: &Path) -> String {
        fs::read_to_string(dir.join(LIVE).join("marker")).unwrap()
    }

    #[test]
    fn a_crash_between_the_renames_keeps_the_new_log() {
        let dir = tempfile::tempdir().unwrap();
        mkdir(dir.path(), NEW);
        mkdir(dir.path(), OLD);
        settle_leftovers(dir.path()).unwrap();
        assert_eq!(marker(dir.path()), NEW);
        assert!(!dir.path().join(OLD).exists());
    }

    #[test]
    fn a_crash_while_writing_keeps_the_old_log() {
        let dir = tempfile::tempdir().unwrap();
        mkdir(dir.path(), LIVE);
        mkdir(dir.path(), NEW);
        settle_leftovers(dir.path()).unwrap();
        assert_eq!(marker(dir.path()), LIVE);
        assert!(!dir.path().join(NEW).exists());
    }

    #[test]
    fn a_rewrite_leaves_only_the_new_records() {
        let dir = tempfile::tempdir().unwrap();
        let old = SegmentLog::open(dir.path().join(LIVE), LogConfig::default(), |_| {}).unwrap();
        for n in 0..10u8 {
            old.append_durable(1, Bytes::from(vec![n])).unwrap();
        }
        old.close().unwrap();
        let fresh = rewrite(dir.path(), vec![(2, Bytes::from_static(b"kept"))]).unwrap();
        fresh.close().unwrap();
        let mut seen = Vec::new();
        let log = SegmentLog::open(dir.path().join(LIVE), LogConfig::default(), |r| {
            seen.push((r.kind, r.payload))
        })
        .unwrap();
        log.close().unwrap();
        assert_eq!(seen, vec![(2, Bytes::from_static(b"kept"))]);
    }
}
