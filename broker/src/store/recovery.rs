//! Reading the log back at open. Segments are scanned in order, one buffered pass each, and
//! every valid record is handed to the caller as it is read, so memory stays flat however large
//! the log is. The log is only ever trusted as a prefix: at the first record that is torn
//! (a crash mid-write), damaged (checksum) or absurd (a length no append could have produced),
//! the segment is cut there and every later segment is deleted. A record after a bad one could
//! be valid bytes, but nothing says that the writes in between ever reached the disk, so keeping
//! it could resurrect a record whose predecessors (say, the enqueue an ack refers to) are gone.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use tracing::{info, warn};

use super::config::LogConfig;
use super::error::StoreError;
use super::frame::{self, Corruption, RECORD_HEADER_LEN, RecordHeader, SEGMENT_HEADER_LEN};
use super::log::{Position, Record};
use super::segment;

/// One large buffer per segment keeps the scan at a few read syscalls per MiB.
const READ_BUFFER: usize = 1024 * 1024;
/// Below this total size progress lines would be noise; the summary is enough.
const PROGRESS_THRESHOLD: u64 = 64 * 1024 * 1024;

/// What survived recovery.
pub(crate) struct Recovered {
    /// Segment id → valid length in bytes, oldest first.
    pub segments: BTreeMap<u64, u64>,
    /// The id a new segment should get if none survived: past every id ever seen, so that a
    /// position held from before cannot point into an unrelated new file.
    pub next_id: u64,
}

pub(crate) fn recover(
    dir: &Path,
    config: &LogConfig,
    on_record: &mut dyn FnMut(Record),
) -> Result<Recovered, StoreError> {
    let started = Instant::now();
    let listed = segment::list(dir)?;
    let total_bytes: u64 = listed.iter().map(|&(_, len)| len).sum();
    let next_id = listed.last().map_or(1, |&(id, _)| id.saturating_add(1));
    let mut segments = BTreeMap::new();
    let mut records = 0u64;
    let mut bytes = 0u64;

    for (index, &(id, len)) in listed.iter().enumerate() {
        let scan = scan_segment(dir, id, len, config, &mut |record| {
            records += 1;
            on_record(record);
        })?;
        match scan {
            Scan::Complete => {
                segments.insert(id, len);
                bytes += len;
            }
            Scan::Corrupt { offset, reason } => {
                let path = segment::path(dir, id);
                warn!(
                    segment = %path.display(),
                    offset,
                    %reason,
                    "segment log damaged: keeping the records before this offset, dropping the rest"
                );
                if offset < SEGMENT_HEADER_LEN {
                    // Nothing in it can be trusted, not even that it is ours to append to.
                    fs::remove_file(&path).map_err(|e| StoreError::io("removing", &path, e))?;
                } else {
                    truncate(&path, offset)?;
                    segments.insert(id, offset);
                    bytes += offset;
                }
                for &(later, later_len) in &listed[index + 1..] {
                    let path = segment::path(dir, later);
                    warn!(
                        segment = %path.display(),
                        bytes = later_len,
                        "removing segment that follows a damaged one"
                    );
                    fs::remove_file(&path).map_err(|e| StoreError::io("removing", &path, e))?;
                }
                segment::sync_dir(dir).map_err(|e| StoreError::io("syncing", dir, e))?;
                break;
            }
        }
        if total_bytes >= PROGRESS_THRESHOLD {
            info!(
                segment = id,
                records,
                mib_done = bytes / (1024 * 1024),
                mib_total = total_bytes / (1024 * 1024),
                "recovering segment log"
            );
        }
    }

    info!(
        dir = %dir.display(),
        records,
        segments = segments.len(),
        bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "segment log recovered"
    );
    Ok(Recovered { segments, next_id })
}

enum Scan {
    Complete,
    Corrupt { offset: u64, reason: Corruption },
}

/// Reads every record of one segment of `len` bytes. I/O errors are returned; everything that
/// is wrong with the contents is a [`Scan::Corrupt`].
fn scan_segment(
    dir: &Path,
    id: u64,
    len: u64,
    config: &LogConfig,
    on_record: &mut dyn FnMut(Record),
) -> Result<Scan, StoreError> {
    let path = segment::path(dir, id);
    let io_err = |e| StoreError::io("reading", &path, e);
    let file = File::open(&path).map_err(io_err)?;
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);

    let mut header = [0; SEGMENT_HEADER_LEN as usize];
    let got = read_up_to(&mut reader, &mut header).map_err(io_err)?;
    if let Err(reason) = frame::check_segment_header(&header[..got]) {
        return Ok(Scan::Corrupt { offset: 0, reason });
    }

    let mut offset = SEGMENT_HEADER_LEN;
    loop {
        let available = len.saturating_sub(offset);
        if available == 0 {
            return Ok(Scan::Complete);
        }
        if available < RECORD_HEADER_LEN as u64 {
            let reason = Corruption::TornHeader { available };
            return Ok(Scan::Corrupt { offset, reason });
        }
        let mut raw = [0; RECORD_HEADER_LEN];
        if let Some(scan) = read_or_torn(&mut reader, &mut raw, offset, || Corruption::TornHeader {
            available,
        })
        .map_err(io_err)?
        {
            return Ok(scan);
        }
        let record = RecordHeader::decode(&raw);
        if record.len > config.max_record_size {
            let reason = Corruption::AbsurdLength {
                len: record.len,
                max: config.max_record_size,
            };
            return Ok(Scan::Corrupt { offset, reason });
        }
        // Checked against the file size before allocating, so a garbage length cannot make us
        // allocate hundreds of MiB just to find the file ends sooner.
        let payload_available = available - RECORD_HEADER_LEN as u64;
        let torn_payload = || Corruption::TornPayload {
            len: record.len,
            available: payload_available,
        };
        if u64::from(record.len) > payload_available {
            return Ok(Scan::Corrupt {
                offset,
                reason: torn_payload(),
            });
        }
        let mut payload = vec![0; record.len as usize];
        if let Some(scan) =
            read_or_torn(&mut reader, &mut payload, offset, torn_payload).map_err(io_err)?
        {
            return Ok(scan);
        }
        if let Err(reason) = record.verify(&payload) {
            return Ok(Scan::Corrupt { offset, reason });
        }
        on_record(Record {
            position: Position {
                segment: id,
                offset,
                len: record.len,
            },
            kind: record.kind,
            payload: Bytes::from(payload),
        });
        offset += record.frame_len();
    }
}

/// Fills `buf`, or reports the record at `offset` as torn if the file ended first (it can only
/// have shrunk under us since it was measured, which is damage like any other).
fn read_or_torn(
    reader: &mut impl Read,
    buf: &mut [u8],
    offset: u64,
    reason: impl FnOnce() -> Corruption,
) -> io::Result<Option<Scan>> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(Scan::Corrupt {
            offset,
            reason: reason(),
        })),
        Err(e) => Err(e),
    }
}

/// Reads as much of `buf` as the file has; the count is less than `buf.len()` only at its end.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Cuts a damaged segment at the end of its valid prefix, durably, so that appends continue
/// from a clean end and the damage is not found (and logged) again at the next open.
fn truncate(path: &Path, len: u64) -> Result<(), StoreError> {
    let err = |e| StoreError::io("truncating", path, e);
    let file = OpenOptions::new().write(true).open(path).map_err(err)?;
    file.set_len(len).map_err(err)?;
    file.sync_all().map_err(err)
}
