//! Segment files on disk: their names, listing them, creating one, and positioned reads.
//!
//! Names are the segment id in 20 zero-padded digits (`00000000000000000001.seg`) so that a
//! directory listing sorts in log order and every `u64` fits.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::error::StoreError;
use super::frame;

const EXTENSION: &str = ".seg";
const ID_DIGITS: usize = 20;

pub(crate) fn file_name(id: u64) -> String {
    format!("{id:0ID_DIGITS$}{EXTENSION}")
}

pub(crate) fn path(dir: &Path, id: u64) -> PathBuf {
    dir.join(file_name(id))
}

/// The id of a segment file name, or `None` for anything else in the directory (which is left
/// alone: it may belong to whoever shares the directory).
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(EXTENSION)?;
    if digits.len() != ID_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Segment ids present in `dir` with their file sizes, oldest first.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, u64)>, StoreError> {
    let entries = fs::read_dir(dir).map_err(|e| StoreError::io("listing", dir, e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("listing", dir, e))?;
        let Some(id) = entry.file_name().to_str().and_then(parse_file_name) else {
            continue;
        };
        let len = entry
            .metadata()
            .map_err(|e| StoreError::io("reading metadata of", entry.path(), e))?
            .len();
        segments.push((id, len));
    }
    segments.sort_unstable();
    Ok(segments)
}

/// Creates segment `id` with its header and makes the new directory entry durable, so that a
/// crash cannot lose a file that later fsyncs of its contents were counted on.
pub(crate) fn create(dir: &Path, id: u64) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path(dir, id))?;
    file.write_all(&frame::segment_header())?;
    sync_dir(dir)?;
    Ok(file)
}

/// Makes creations, deletions and truncations of files in `dir` durable.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened as files here; the file system orders metadata itself.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Reads at an offset without moving a shared cursor, so concurrent readers need no lock.
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_sort() {
        assert_eq!(file_name(1), "00000000000000000001.seg");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert!(file_name(9) < file_name(10));
    }

    #[test]
    fn foreign_file_names_are_ignored() {
        for name in [
            "1.seg",
            "0000000000000000000a.seg",
            "00000000000000000001.tmp",
            "lock",
        ] {
            assert_eq!(parse_file_name(name), None, "{name}");
        }
    }
}
