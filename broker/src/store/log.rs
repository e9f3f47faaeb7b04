//! [`SegmentLog`], the handle callers use: append, read back, wait for durability, reclaim
//! space. Appends are ordered and placed under one short lock (the checksum is computed before
//! taking it); all file writes and fsyncs happen on the writer thread (`writer.rs`).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use super::config::LogConfig;
use super::error::{StoreError, WriterError};
use super::frame::{self, RECORD_HEADER_LEN, RecordHeader, SEGMENT_HEADER_LEN};
use super::recovery;
use super::segment;
use super::writer;

/// Where a record lives: enough to read it back with [`SegmentLog::read`] without an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    /// Byte offset of the record's frame (its header, not its payload) in the segment file.
    pub offset: u64,
    /// Payload length in bytes.
    pub len: u32,
}

/// A record as recovery hands it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub position: Position,
    /// The caller's tag for what the payload is; this module never interprets it.
    pub kind: u8,
    pub payload: Bytes,
}

/// What an append returns at once, before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Increasing by one per append, starting at 1 for each [`SegmentLog::open`] (sequences are
    /// not stored on disk: they only order appends against [`SegmentLog::synced`]).
    pub sequence: u64,
    pub position: Position,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub id: u64,
    /// Size of the segment including appends still queued for the writer.
    pub bytes: u64,
}

/// Called with (synced, written).
type SyncListener = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// A queued append, kept in memory until the writer has written it so that reads can be served
/// from here meanwhile.
pub(crate) struct Entry {
    pub sequence: u64,
    pub position: Position,
    pub header: RecordHeader,
    pub payload: Bytes,
}

/// State shared by the handle and the writer thread.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub config: LogConfig,
    pub state: Mutex<State>,
    /// Wakes the writer: appends, removals, sync requests, close.
    pub work: Condvar,
    /// Wakes callers of [`SegmentLog::sync`] when `synced` moves or the writer fails.
    pub synced_changed: Condvar,
    /// Every record with a sequence up to this one is on disk and fsynced.
    pub synced: AtomicU64,
    /// Every record up to this sequence has been handed to the kernel (it survives the process
    /// being killed, not a power cut).
    pub written: AtomicU64,
    pub listener: Mutex<Option<SyncListener>>,
}

pub(crate) struct State {
    pub last_sequence: u64,
    /// Where the next append goes. Positions are decided here rather than by the writer so that
    /// `append` can return them without waiting.
    pub segment: u64,
    pub offset: u64,
    /// Appends not yet taken by the writer, in sequence (and therefore position) order.
    pub pending: Vec<Entry>,
    /// The batch the writer is writing right now.
    pub in_flight: Option<Arc<Vec<Entry>>>,
    /// The highest sequence someone needs fsynced: the last durable append or a `sync` call.
    pub sync_wanted: u64,
    /// Segments to delete, done by the writer after the writes queued before the removal, so a
    /// write still queued for a removed segment cannot recreate its file.
    pub removals: Vec<u64>,
    /// Segment id → size, including queued appends.
    pub segments: BTreeMap<u64, u64>,
    pub failed: Option<WriterError>,
    pub closing: bool,
}

/// The durable append-only log. See the module documentation for the design.
///
/// Shared between threads by reference (`Arc<SegmentLog>`); every method takes `&self`. Only
/// [`sync`](Self::sync), [`read`](Self::read) and closing block, none of them on another
/// caller's fsync except `sync`, which exists to wait for one.
pub struct SegmentLog {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    /// Read-only handles by segment, for positioned reads that need no seek and no lock.
    readers: Mutex<HashMap<u64, Arc<File>>>,
}

/// Read handles kept open at most; beyond it the cache starts over (reads of old segments are
/// rare enough that reopening costs little, and a large log must not exhaust descriptors).
const MAX_OPEN_READERS: usize = 64;

impl SegmentLog {
    /// Opens (creating if needed) the log in `dir`, handing every record that survives recovery
    /// to `on_record` in log order before returning. A damaged tail is cut off and logged, not
    /// an error; only real I/O errors fail the open.
    pub fn open(
        dir: impl AsRef<Path>,
        config: LogConfig,
        mut on_record: impl FnMut(Record),
    ) -> Result<SegmentLog, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("creating", &dir, e))?;
        let recovered = recovery::recover(&dir, &config, &mut on_record)?;
        let mut segments = recovered.segments;

        let (segment, offset, file) = match segments.last_key_value() {
            Some((&id, &len)) => {
                let path = segment::path(&dir, id);
                let err = |e| StoreError::io("opening", &path, e);
                let mut file = OpenOptions::new().write(true).open(&path).map_err(err)?;
                file.seek(SeekFrom::Start(len)).map_err(err)?;
                (id, len, file)
            }
            None => {
                let id = recovered.next_id;
                let file = segment::create(&dir, id)
                    .map_err(|e| StoreError::io("creating", segment::path(&dir, id), e))?;
                segments.insert(id, SEGMENT_HEADER_LEN);
                (id, SEGMENT_HEADER_LEN, file)
            }
        };

        let shared = Arc::new(Shared {
            dir,
            config,
            state: Mutex::new(State {
                last_sequence: 0,
                segment,
                offset,
                pending: Vec::new(),
                in_flight: None,
                sync_wanted: 0,
                removals: Vec::new(),
                segments,
                failed: None,
                closing: false,
            }),
            work: Condvar::new(),
            synced_changed: Condvar::new(),
            synced: AtomicU64::new(0),
            written: AtomicU64::new(0),
            listener: Mutex::new(None),
        });
        let writer_shared = Arc::clone(&shared);
        let writer = thread::Builder::new()
            .name("rmqd-store-writer".into())
            .spawn(move || writer::run(writer_shared, file, segment, offset))
            .map_err(|e| StoreError::io("starting the writer thread for", &shared.dir, e))?;
        Ok(SegmentLog {
            shared,
            writer: Some(writer),
            readers: Mutex::new(HashMap::new()),
        })
    }

    /// Queues a record that needs no fsync of its own (an ack, say): it is written in order with
    /// everything else and becomes durable with the next sync for any reason (a durable append,
    /// [`sync`](Self::sync), close). A crash may lose it. Never blocks on I/O.
    pub fn append(&self, kind: u8, payload: Bytes) -> Result<Appended, StoreError> {
        self.push(kind, payload, false)
    }

    /// Queues a record that the writer will fsync as soon as it can; [`synced`](Self::synced)
    /// reaching the returned sequence means it is on disk. Never blocks on I/O.
    pub fn append_durable(&self, kind: u8, payload: Bytes) -> Result<Appended, StoreError> {
        self.push(kind, payload, true)
    }

    fn push(&self, kind: u8, payload: Bytes, durable: bool) -> Result<Appended, StoreError> {
        let max = self.shared.config.max_record_size;
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&len| len <= max)
            .ok_or(StoreError::RecordTooLarge {
                len: payload.len(),
                max,
            })?;
        // Outside the lock: concurrent appenders checksum in parallel.
        let header = RecordHeader {
            len,
            crc: frame::checksum(kind, &payload),
            kind,
        };

        let mut state = self.shared.state.lock();
        if let Some(err) = &state.failed {
            return Err(err.clone().into());
        }
        if state.offset > SEGMENT_HEADER_LEN
            && state.offset + header.frame_len() > self.shared.config.segment_size
        {
            state.segment += 1;
            state.offset = SEGMENT_HEADER_LEN;
        }
        let position = Position {
            segment: state.segment,
            offset: state.offset,
            len,
        };
        state.offset += header.frame_len();
        let (segment, offset) = (state.segment, state.offset);
        state.segments.insert(segment, offset);
        state.last_sequence += 1;
        let sequence = state.last_sequence;
        if durable {
            state.sync_wanted = sequence;
        }
        // The writer only sleeps on an empty queue, so only the first append into one needs to
        // wake it.
        let wake = state.pending.is_empty();
        state.pending.push(Entry {
            sequence,
            position,
            header,
            payload,
        });
        drop(state);
        if wake {
            self.shared.work.notify_one();
        }
        Ok(Appended { sequence, position })
    }

    /// The highest sequence such that it and every record before it are fsynced.
    pub fn synced(&self) -> u64 {
        self.shared.synced.load(Ordering::Acquire)
    }

    /// The highest sequence such that it and every record before it are written to the file
    /// (not necessarily fsynced): safe from `kill -9`, not from power loss.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Acquire)
    }

    /// Blocks until every record appended before the call is fsynced, durable or not, and
    /// returns the last such sequence. For shutdown paths, compaction (re-append the live
    /// records, sync, then remove the old segments) and tests; not for tokio workers.
    pub fn sync(&self) -> Result<u64, StoreError> {
        let mut state = self.shared.state.lock();
        let target = state.last_sequence;
        loop {
            if self.synced() >= target {
                return Ok(target);
            }
            if let Some(err) = &state.failed {
                return Err(err.clone().into());
            }
            if state.sync_wanted < target {
                state.sync_wanted = target;
                self.shared.work.notify_one();
            }
            self.shared.synced_changed.wait(&mut state);
        }
    }

    /// Registers the function the writer thread calls after each fsync with the new
    /// [`synced`](Self::synced) and [`written`](Self::written) values (both nondecreasing), and
    /// again after each batch written to the file, replacing any previous one. It runs on
    /// the writer thread, so it must be quick, must not panic, and must not call
    /// [`sync`](Self::sync) or close the log (that would wait for itself). Appends and reads
    /// are fine.
    pub fn on_synced(&self, listener: impl Fn(u64, u64) + Send + Sync + 'static) {
        *self.shared.listener.lock() = Some(Arc::new(listener));
    }

    /// `Err` with the writer's first error once it has stopped: from then on nothing more is
    /// written, `synced` no longer moves and appends are refused.
    pub fn health(&self) -> Result<(), WriterError> {
        match &self.shared.state.lock().failed {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// Reads one record back and verifies its checksum. Records still queued for the writer (or
    /// being written) are served from memory, so this never waits for the writer and works
    /// right after the append that returned `position`.
    pub fn read(&self, position: Position) -> io::Result<Bytes> {
        {
            let state = self.shared.state.lock();
            if !state.segments.contains_key(&position.segment) {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no segment {}", position.segment),
                ));
            }
            let queued = find(&state.pending, position)
                .or_else(|| state.in_flight.as_deref().and_then(|b| find(b, position)));
            if let Some(entry) = queued {
                if entry.position != position {
                    return Err(invalid(format!(
                        "record at {position:?} has length {}",
                        entry.position.len
                    )));
                }
                return Ok(entry.payload.clone());
            }
            // Not queued and not in flight: the writer has written it (it drops a batch from
            // `in_flight` only after writing it), so the file has it.
        }

        let file = self.reader(position.segment)?;
        let mut buf = vec![0; RECORD_HEADER_LEN + position.len as usize];
        segment::read_exact_at(&file, &mut buf, position.offset)?;
        let mut raw = [0; RECORD_HEADER_LEN];
        raw.copy_from_slice(&buf[..RECORD_HEADER_LEN]);
        let header = RecordHeader::decode(&raw);
        if header.len != position.len {
            return Err(invalid(format!(
                "record at {position:?} has length {}",
                header.len
            )));
        }
        header
            .verify(&buf[RECORD_HEADER_LEN..])
            .map_err(|reason| invalid(format!("record at {position:?}: {reason}")))?;
        Ok(Bytes::from(buf).slice(RECORD_HEADER_LEN..))
    }

    fn reader(&self, id: u64) -> io::Result<Arc<File>> {
        let mut readers = self.readers.lock();
        if let Some(file) = readers.get(&id) {
            return Ok(Arc::clone(file));
        }
        let file = Arc::new(File::open(segment::path(&self.shared.dir, id))?);
        if readers.len() >= MAX_OPEN_READERS {
            readers.clear();
        }
        readers.insert(id, Arc::clone(&file));
        Ok(file)
    }

    /// Every segment, oldest first.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let state = self.shared.state.lock();
        state
            .segments
            .iter()
            .map(|(&id, &bytes)| SegmentInfo { id, bytes })
            .collect()
    }

    /// The segment appends currently go to; it cannot be removed.
    pub fn current_segment_id(&self) -> u64 {
        self.shared.state.lock().segment
    }

    /// Forgets segment `id` at once (reads of it fail from now on) and has the writer delete
    /// its file after every write queued before this call. The caller is responsible for
    /// having re-appended (and synced) whatever in it is still live.
    pub fn remove_segment(&self, id: u64) -> Result<(), StoreError> {
        let mut state = self.shared.state.lock();
        if id == state.segment {
            return Err(StoreError::CurrentSegment(id));
        }
        if state.segments.remove(&id).is_none() {
            return Err(StoreError::NoSuchSegment(id));
        }
        state.removals.push(id);
        drop(state);
        self.shared.work.notify_one();
        self.readers.lock().remove(&id);
        Ok(())
    }

    /// Writes and fsyncs everything queued, stops the writer thread, and reports its error if it
    /// had one. Dropping the log does the same, logging the error instead.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), StoreError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        self.shared.state.lock().closing = true;
        self.shared.work.notify_one();
        if writer.join().is_err() {
            return Err(WriterError::new(
                "joining the writer thread of",
                &self.shared.dir,
                io::Error::other("writer thread panicked"),
            )
            .into());
        }
        self.health().map_err(StoreError::from)
    }
}

impl Drop for SegmentLog {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            tracing::error!(dir = %self.shared.dir.display(), "closing segment log: {err}");
        }
    }
}

fn find(entries: &[Entry], position: Position) -> Option<&Entry> {
    let key = (position.segment, position.offset);
    entries
        .binary_search_by_key(&key, |e| (e.position.segment, e.position.offset))
        .ok()
        .map(|i| &entries[i])
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
