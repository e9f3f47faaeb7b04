//! The durable log that persistence sits on: opaque records appended to numbered segment files.
//!
//! Why this shape:
//! - **Append-only segments.** Writes only ever go to the end of the newest file, which is the
//!   cheapest thing a disk does and the easiest to make crash-safe: after a crash the only damage
//!   is a torn tail. Space comes back a whole file at a time ([`SegmentLog::remove_segment`]);
//!   the broker decides which segments hold nothing live, re-appends what is still live from the
//!   rest, and drops them. This module never interprets a record, it stores a kind byte and bytes.
//! - **A checksum per record.** Recovery must tell a record that was fully written from one that
//!   was torn by a crash or damaged on disk. Each record is framed as
//!   `[payload len u32 LE][crc32 of kind+payload u32 LE][kind u8][payload]`; recovery keeps the
//!   longest valid prefix of the log and cuts the rest off (see `recovery.rs`).
//! - **Group commit on a dedicated thread.** An fsync costs milliseconds; paying one per message
//!   would cap throughput at a few hundred messages per second and would block whichever tokio
//!   worker called it. [`SegmentLog::append`] only queues the record and returns; one writer
//!   thread writes everything queued in large writes and then syncs once, so a single fsync
//!   covers every record that arrived while the previous one ran. The sequence number that is
//!   durable is published through [`SegmentLog::synced`] and an optional callback, which is what
//!   publisher confirms wait for.
//!
//! Files: `config.rs` (limits), `error.rs`, `frame.rs` (on-disk format), `segment.rs` (file names
//! and file-system helpers), `recovery.rs` (reading the log back at open), `writer.rs` (the writer
//! thread), `log.rs` (the handle callers use).

mod config;
mod error;
mod frame;
mod log;
mod recovery;
mod segment;
mod writer;

#[cfg(test)]
mod tests;

pub use config::LogConfig;
pub use error::{StoreError, WriterError};
pub use log::{Appended, Position, Record, SegmentInfo, SegmentLog};
