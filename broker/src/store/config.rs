//! Limits of a [`SegmentLog`](super::SegmentLog), chosen by the caller at open.

/// How big segments grow, how big a record may be, how much one fsync may cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A new segment is started when the next record would take the current one past this many
    /// bytes. A record larger than this still fits: it gets a segment to itself.
    pub segment_size: u64,
    /// Appends of larger payloads are refused, and recovery treats a length field above it as
    /// corruption rather than trying to read (and allocate) that much.
    pub max_record_size: u32,
    /// The writer keeps taking newly queued records before syncing while more keep arriving, up
    /// to this many bytes; then it syncs anyway, so that a steady stream of appends cannot delay
    /// the fsync (and the confirms waiting on it) indefinitely.
    pub max_batch_bytes: usize,
}

impl LogConfig {
    pub const DEFAULT_SEGMENT_SIZE: u64 = 64 * 1024 * 1024;
    /// The largest `max_message_size` RabbitMQ allows (512 MiB) plus room for a record's
    /// metadata. Not lower than that even when the broker allows smaller messages: records
    /// written under a larger setting must still read back after it is lowered.
    pub const DEFAULT_MAX_RECORD_SIZE: u32 = (512 + 2) * 1024 * 1024;
    pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_size: Self::DEFAULT_SEGMENT_SIZE,
            max_record_size: Self::DEFAULT_MAX_RECORD_SIZE,
            max_batch_bytes: Self::DEFAULT_MAX_BATCH_BYTES,
        }
    }
}
