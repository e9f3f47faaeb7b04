//! The writer thread: the only code that writes segment files after open.
//!
//! Group commit: it takes everything queued in one go, writes it through a large buffer (many
//! records per write syscall), and keeps taking whatever arrived meanwhile until the queue is
//! momentarily empty or `max_batch_bytes` have been written; then one fsync covers all of it and
//! the new durable sequence is published. Appends that arrive during that fsync form the next
//! group, so the fsync rate adapts to the disk and the cost per record falls as load rises.
//!
//! The first I/O error stops it for good: retrying a failed fsync is unsafe (on Linux the
//! failed pages may have been dropped and a second fsync reports success), so the only honest
//! state is "nothing after this point is durable", which `synced` then says by no longer moving.

use std::fs::{self, File};
use std::io::{self, Write};
use std::mem;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::{debug, error};

use super::error::WriterError;
use super::frame::SEGMENT_HEADER_LEN;
use super::log::{Entry, Shared};
use super::segment;

/// Records are gathered up to this size before a write syscall; larger records are written
/// straight from their payload.
const WRITE_BUFFER: usize = 1024 * 1024;

pub(crate) fn run(shared: Arc<Shared>, file: File, segment: u64, offset: u64) {
    let mut writer = Writer {
        shared,
        file,
        segment,
        offset,
        buf: Vec::with_capacity(WRITE_BUFFER),
        last_written: 0,
    };
    if let Err(err) = writer.run() {
        error!(dir = %writer.shared.dir.display(), "{err}; appends are refused from now on");
        let mut state = writer.shared.state.lock();
        state.failed = Some(err);
        writer.shared.synced_changed.notify_all();
    }
}

struct Writer {
    shared: Arc<Shared>,
    /// The segment being appended to, and the offset the next byte written will have.
    file: File,
    segment: u64,
    offset: u64,
    buf: Vec<u8>,
    /// Sequence of the last record handed to the kernel.
    last_written: u64,
}

/// One take from the queue.
struct Batch {
    entries: Arc<Vec<Entry>>,
    removals: Vec<u64>,
    sync_wanted: u64,
    closing: bool,
}

impl Writer {
    fn run(&mut self) -> Result<(), WriterError> {
        let mut unsynced_bytes = 0usize;
        loop {
            let batch = self.take();
            for entry in batch.entries.iter() {
                self.write(entry)?;
                unsynced_bytes += entry.header.frame_len() as usize;
            }
            self.flush()?;
            self.published_written();

            let more = {
                let mut state = self.shared.state.lock();
                // Written: reads may go to the file now.
                state.in_flight = None;
                !state.pending.is_empty()
            };
            for id in batch.removals {
                self.remove(id);
            }

            let synced = self.shared.synced.load(Ordering::Acquire);
            let needs_sync =
                batch.sync_wanted > synced || (batch.closing && self.last_written > synced);
            if needs_sync && (!more || unsynced_bytes >= self.shared.config.max_batch_bytes) {
                self.sync()?;
                unsynced_bytes = 0;
            }
            if batch.closing && !more {
                return Ok(());
            }
        }
    }

    /// Waits for work and takes all of it.
    fn take(&mut self) -> Batch {
        let mut state = self.shared.state.lock();
        loop {
            let synced = self.shared.synced.load(Ordering::Acquire);
            if !state.pending.is_empty()
                || !state.removals.is_empty()
                || state.closing
                || state.sync_wanted > synced
            {
                break;
            }
            self.shared.work.wait(&mut state);
        }
        let entries = Arc::new(mem::take(&mut state.pending));
        if !entries.is_empty() {
            state.in_flight = Some(Arc::clone(&entries));
        }
        Batch {
            entries,
            removals: mem::take(&mut state.removals),
            sync_wanted: state.sync_wanted,
            closing: state.closing,
        }
    }

    fn write(&mut self, entry: &Entry) -> Result<(), WriterError> {
        if entry.position.segment != self.segment {
            self.roll(entry.position.segment)?;
        }
        if entry.position.offset != self.offset {
            // Positions were promised to callers; writing elsewhere would make them lie.
            return Err(self.error(
                "writing",
                io::Error::other(format!(
                    "record {} placed at offset {} but the file is at {}",
                    entry.sequence, entry.position.offset, self.offset
                )),
            ));
        }
        let frame_len = entry.header.frame_len() as usize;
        if self.buf.len() + frame_len > WRITE_BUFFER {
            self.flush()?;
        }
        self.buf.extend_from_slice(&entry.header.encode());
        if frame_len > WRITE_BUFFER {
            self.flush()?;
            let result = self.file.write_all(&entry.payload);
            result.map_err(|e| self.error("writing", e))?;
        } else {
            self.buf.extend_from_slice(&entry.payload);
        }
        self.offset += frame_len as u64;
        self.last_written = entry.sequence;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), WriterError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = self.file.write_all(&self.buf);
        self.buf.clear();
        result.map_err(|e| self.error("writing", e))
    }

    /// Finishes the current segment and starts segment `id`. The old one is fsynced now because
    /// later syncs only cover the new file, yet `synced` will count records in both.
    fn roll(&mut self, id: u64) -> Result<(), WriterError> {
        self.flush()?;
        let result = self.file.sync_data();
        result.map_err(|e| self.error("syncing", e))?;
        let file = segment::create(&self.shared.dir, id)
            .map_err(|e| WriterError::new("creating", segment::path(&self.shared.dir, id), e))?;
        debug!(segment = id, "started a new segment");
        self.file = file;
        self.segment = id;
        self.offset = SEGMENT_HEADER_LEN;
        Ok(())
    }

    /// Tells waiters that everything written so far is in the kernel's hands.
    fn published_written(&self) {
        if self
            .shared
            .written
            .swap(self.last_written, Ordering::AcqRel)
            == self.last_written
        {
            return;
        }
        let listener = self.shared.listener.lock().clone();
        if let Some(listener) = listener {
            listener(
                self.shared.synced.load(Ordering::Acquire),
                self.last_written,
            );
        }
    }

    /// fsyncs the current segment and publishes everything written so far as durable.
    fn sync(&mut self) -> Result<(), WriterError> {
        let result = self.file.sync_data();
        result.map_err(|e| self.error("syncing", e))?;
        let synced = self.last_written;
        {
            // Stored under the lock so that `sync` callers cannot miss the wake-up between
            // checking `synced` and waiting.
            let _state = self.shared.state.lock();
            self.shared.synced.store(synced, Ordering::Release);
            self.shared.synced_changed.notify_all();
        }
        let listener = self.shared.listener.lock().clone();
        if let Some(listener) = listener {
            listener(synced, self.shared.written.load(Ordering::Acquire));
        }
        Ok(())
    }

    /// Deletes a segment the caller no longer needs. A failure here is logged but does not stop
    /// the writer: it costs disk space (and duplicate records at the next recovery), not the
    /// durability of anything appended.
    fn remove(&self, id: u64) {
        let path = segment::path(&self.shared.dir, id);
        let result = fs::remove_file(&path).and_then(|()| segment::sync_dir(&self.shared.dir));
        match result {
            Ok(()) => debug!(segment = id, "removed segment"),
            Err(err) => error!(segment = %path.display(), "removing segment: {err}"),
        }
    }

    fn error(&self, action: &'static str, source: io::Error) -> WriterError {
        WriterError::new(
            action,
            segment::path(&self.shared.dir, self.segment),
            source,
        )
    }
}
