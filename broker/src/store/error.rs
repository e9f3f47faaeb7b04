//! What can go wrong in the segment log: I/O at open, refused appends, and the writer thread's
//! failure, which is sticky: once a write or fsync failed nothing later is written, so that no
//! confirm is ever sent for a record that may not be on disk.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A real I/O error (permissions, missing device, ...), with the file it happened on.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("record of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge { len: usize, max: u32 },
    #[error("segment {0} is the current segment and cannot be removed")]
    CurrentSegment(u64),
    #[error("no segment {0}")]
    NoSuchSegment(u64),
    #[error(transparent)]
    Writer(#[from] WriterError),
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The writer thread's first I/O error. Cloneable so that every later append and
/// [`SegmentLog::health`](super::SegmentLog::health) can report it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("segment log writer stopped: {action} {}: {source}", path.display())]
pub struct WriterError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: Arc<io::Error>,
}

impl WriterError {
    pub(crate) fn new(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        WriterError {
            action,
            path: path.into(),
            source: Arc::new(source),
        }
    }
}
