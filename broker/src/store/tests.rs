//! Behaviour of the segment log as a whole: append, read back, recover, damage, reclaim.

use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use proptest::prelude::*;

use super::frame::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::segment;
use super::*;

fn open(dir: &Path, config: LogConfig) -> (SegmentLog, Vec<Record>) {
    let mut records = Vec::new();
    let log = SegmentLog::open(dir, config, |r| records.push(r)).expect("open");
    (log, records)
}

fn small_segments(segment_size: u64) -> LogConfig {
    LogConfig {
        segment_size,
        ..LogConfig::default()
    }
}

fn payload(i: usize) -> Bytes {
    Bytes::from(format!("record number {i} {}", "x".repeat(i % 37)))
}

/// Appends `n` durable records and returns what each append said.
fn append_n(log: &SegmentLog, n: usize) -> Vec<Appended> {
    (0..n)
        .map(|i| {
            log.append_durable((i % 5) as u8, payload(i))
                .expect("append")
        })
        .collect()
}

fn segment_files(dir: &Path) -> Vec<u64> {
    segment::list(dir)
        .expect("list")
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

fn file_len(dir: &Path, id: u64) -> u64 {
    fs::metadata(segment::path(dir, id))
        .expect("metadata")
        .len()
}

fn patch(dir: &Path, id: u64, offset: u64, bytes: &[u8]) {
    let path = segment::path(dir, id);
    let mut contents = fs::read(&path).expect("read segment");
    contents[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
    fs::write(&path, contents).expect("write segment");
}

fn truncate(dir: &Path, id: u64, len: u64) {
    let file = OpenOptions::new()
        .write(true)
        .open(segment::path(dir, id))
        .expect("open segment");
    file.set_len(len).expect("truncate");
}

fn assert_recovered(records: &[Record], appended: &[Appended]) {
    assert_eq!(records.len(), appended.len());
    for (i, (record, appended)) in records.iter().zip(appended).enumerate() {
        assert_eq!(record.position, appended.position, "record {i}");
        assert_eq!(record.kind, (i % 5) as u8, "record {i}");
        assert_eq!(record.payload, payload(i), "record {i}");
    }
}

#[test]
fn new_directory_opens_empty_with_one_segment() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("nested/store");
    let (log, records) = open(&dir, LogConfig::default());
    assert!(records.is_empty());
    assert_eq!(log.current_segment_id(), 1);
    assert_eq!(
        log.segments(),
        vec![SegmentInfo {
            id: 1,
            bytes: SEGMENT_HEADER_LEN
        }]
    );
    assert_eq!(log.synced(), 0);
    assert_eq!(log.sync().expect("sync"), 0);
    log.close().expect("close");
    assert_eq!(segment_files(&dir), vec![1]);
}

#[test]
fn appended_records_read_back_and_recover_in_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), LogConfig::default());
    let appended = append_n(&log, 100);
    assert_eq!(appended[0].sequence, 1);
    assert_eq!(appended[99].sequence, 100);
    assert_eq!(appended[0].position.offset, SEGMENT_HEADER_LEN);
    for (i, a) in appended.iter().enumerate() {
        assert_eq!(log.read(a.position).expect("read"), payload(i));
    }
    log.close().expect("close");

    let (log, records) = open(tmp.path(), LogConfig::default());
    assert_recovered(&records, &appended);
    // Appends continue after the recovered records, with sequences starting over.
    let next = log
        .append_durable(9, Bytes::from_static(b"after"))
        .expect("append");
    assert_eq!(next.sequence, 1);
    let last = appended[99].position;
    assert_eq!(
        next.position.offset,
        last.offset + RECORD_HEADER_LEN as u64 + u64::from(last.len)
    );
    for (i, a) in appended.iter().enumerate() {
        assert_eq!(log.read(a.position).expect("read"), payload(i));
    }
    log.close().expect("close");
    let (_log, records) = open(tmp.path(), LogConfig::default());
    assert_eq!(records.len(), 101);
    assert_eq!(records[100].payload, Bytes::from_static(b"after"));
}

#[test]
fn corrupt_byte_stops_recovery_there_and_keeps_the_prefix() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), LogConfig::default());
    let appended = append_n(&log, 10);
    log.close().expect("close");

    let bad = appended[6].position;
    patch(
        tmp.path(),
        bad.segment,
        bad.offset + RECORD_HEADER_LEN as u64 + 3,
        b"!",
    );
    let (log, records) = open(tmp.path(), LogConfig::default());
    assert_recovered(&records, &appended[..6]);
    assert_eq!(file_len(tmp.path(), bad.segment), bad.offset);
    let again = log
        .append_durable(1, Bytes::from_static(b"new"))
        .expect("append");
    assert_eq!(again.position.offset, bad.offset);
    log.close().expect("close");

    let (_log, records) = open(tmp.path(), LogConfig::default());
    assert_eq!(records.len(), 7);
    assert_eq!(records[6].payload, Bytes::from_static(b"new"));
}

#[test]
fn corrupt_kind_byte_is_detected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), LogConfig::default());
    let appended = append_n(&log, 4);
    log.close().expect("close");

    let bad = appended[2].position;
    patch(tmp.path(), bad.segment, bad.offset + 8, &[200]);
    let (_log, records) = open(tmp.path(), LogConfig::default());
    assert_recovered(&records, &appended[..2]);
}

#[test]
fn record_torn_mid_payload_is_cut_off() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), LogConfig::default());
    let appended = append_n(&log, 10);
    log.close().expect("close");

    let last = appended[9].position;
    truncate(
        tmp.path(),
        last.segment,
        last.offset + RECORD_HEADER_LEN as u64 + 2,
    );
    let (_log, records) = open(tmp.path(), LogConfig::default());
    assert_recovered(&records, &appended[..9]);
    assert_eq!(file_len(tmp.path(), last.segment), last.offset);
}

#[test]
fn record_torn_mid_header_is_cut_off() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), LogConfig::default());
    let appended = append_n(&log, 3);
    log.close().expect("close");

    let last = appended[2].position;
    truncate(tmp.path(), last.segment, last.offset + 4);
    let (_log, records) = open(tmp.path(), LogConfig::default());
    assert_recovered(&records, &appended[..2]);
}

#[test]
fn garbage_length_field_stops_recovery() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), LogConfig::default());
    let appended = append_n(&log, 10);
    log.close().expect("close");

    // Above the record limit: rejected without reading.
    let bad = appended[3].position;
    patch(tmp.path(), bad.segment, bad.offset, &u32::MAX.to_le_bytes());
    let (log, records) = open(tmp.path(), LogConfig::default());
    assert_recovered(&records, &appended[..3]);
    log.close().expect("close");

    // Within the limit but past the end of the file.
    let bad = appended[1].position;
    patch(
        tmp.path(),
        bad.segment,
        bad.offset,
        &1_000_000u32.to_le_bytes(),
    );
    let (_log, records) = open(tmp.path(), LogConfig::default());
    assert_recovered(&records, &appended[..1]);
}

#[test]
fn damage_in_an_early_segment_removes_the_later_segments() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), small_segments(300));
    let appended = append_n(&log, 60);
    log.close().expect("close");
    let files = segment_files(tmp.path());
    assert!(files.len() > 4, "{files:?}");

    let bad = appended
        .iter()
        .position(|a| a.position.segment == files[2])
        .expect("a record in the third segment")
        + 1;
    let position = appended[bad].position;
    patch(
        tmp.path(),
        position.segment,
        position.offset + RECORD_HEADER_LEN as u64,
        b"?",
    );
    let (log, records) = open(tmp.path(), small_segments(300));
    assert_recovered(&records, &appended[..bad]);
    assert_eq!(segment_files(tmp.path()), files[..3].to_vec());
    assert_eq!(log.current_segment_id(), files[2]);
}

#[test]
fn segment_with_a_bad_header_is_dropped_with_its_successors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), small_segments(300));
    let appended = append_n(&log, 40);
    log.close().expect("close");
    let files = segment_files(tmp.path());

    patch(tmp.path(), files[1], 0, b"JUNK");
    let (log, records) = open(tmp.path(), small_segments(300));
    let kept = appended
        .iter()
        .take_while(|a| a.position.segment == files[0])
        .count();
    assert_recovered(&records, &appended[..kept]);
    assert_eq!(segment_files(tmp.path()), vec![files[0]]);
    log.close().expect("close");
}

#[test]
fn empty_segment_file_left_by_a_crash_is_dropped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), LogConfig::default());
    let appended = append_n(&log, 5);
    log.close().expect("close");
    fs::write(segment::path(tmp.path(), 2), b"").expect("create empty segment");

    let (log, records) = open(tmp.path(), LogConfig::default());
    assert_recovered(&records, &appended);
    assert_eq!(segment_files(tmp.path()), vec![1]);
    assert_eq!(log.current_segment_id(), 1);
}

#[test]
fn segments_roll_over_at_the_size_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), small_segments(200));
    let appended = append_n(&log, 50);
    log.sync().expect("sync");

    let segments = log.segments();
    assert!(segments.len() > 3, "{segments:?}");
    for info in &segments {
        assert_eq!(info.bytes, file_len(tmp.path(), info.id), "{info:?}");
    }
    for a in &appended {
        let end = a.position.offset + RECORD_HEADER_LEN as u64 + u64::from(a.position.len);
        assert!(
            end <= 200 || a.position.offset == SEGMENT_HEADER_LEN,
            "{a:?}"
        );
    }
    assert_eq!(
        log.current_segment_id(),
        segments.last().expect("segments").id
    );

    // A record bigger than a segment gets one of its own.
    let big = log
        .append_durable(0, Bytes::from(vec![7; 1000]))
        .expect("append");
    assert_eq!(big.position.offset, SEGMENT_HEADER_LEN);
    let after = log.append_durable(0, payload(0)).expect("append");
    assert_eq!(after.position.segment, big.position.segment + 1);
    assert_eq!(log.read(big.position).expect("read"), vec![7; 1000]);
}

#[test]
fn records_read_back_across_rollover_before_and_after_they_are_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), small_segments(256));
    let mut appended = Vec::new();
    for i in 0..200 {
        let a = log.append(1, payload(i)).expect("append");
        // Straight away: usually still queued for the writer, so served from memory.
        assert_eq!(log.read(a.position).expect("read queued"), payload(i));
        appended.push(a);
    }
    log.sync().expect("sync");
    let segments: Vec<u64> = appended.iter().map(|a| a.position.segment).collect();
    assert!(segments.first() != segments.last());
    for (i, a) in appended.iter().enumerate() {
        assert_eq!(log.read(a.position).expect("read written"), payload(i));
    }
}

#[test]
fn reading_with_a_wrong_position_fails() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), LogConfig::default());
    let a = log.append_durable(1, payload(3)).expect("append");
    log.append_durable(1, payload(4)).expect("append");
    log.sync().expect("sync");
    let wrong_len = Position {
        len: a.position.len + 1,
        ..a.position
    };
    assert_eq!(
        log.read(wrong_len).expect_err("wrong length").kind(),
        std::io::ErrorKind::InvalidData
    );
    let wrong_segment = Position {
        segment: 42,
        ..a.position
    };
    assert_eq!(
        log.read(wrong_segment).expect_err("no such segment").kind(),
        std::io::ErrorKind::NotFound
    );
}

#[test]
fn removed_segments_are_gone_and_the_current_one_cannot_be_removed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), small_segments(200));
    let appended = append_n(&log, 40);

    let current = log.current_segment_id();
    assert!(matches!(
        log.remove_segment(current),
        Err(StoreError::CurrentSegment(id)) if id == current
    ));
    assert!(matches!(
        log.remove_segment(current + 1),
        Err(StoreError::NoSuchSegment(_))
    ));

    // Removed right away, possibly before the writer has written it: the file must still be
    // gone afterwards, not recreated by the queued writes.
    let first = log.segments()[0].id;
    log.remove_segment(first).expect("remove");
    assert!(matches!(
        log.remove_segment(first),
        Err(StoreError::NoSuchSegment(_))
    ));
    assert!(log.segments().iter().all(|s| s.id != first));
    assert_eq!(
        log.read(appended[0].position).expect_err("removed").kind(),
        std::io::ErrorKind::NotFound
    );
    log.close().expect("close");
    assert!(!segment::path(tmp.path(), first).exists());

    let (_log, records) = open(tmp.path(), small_segments(200));
    let survivors: Vec<&Appended> = appended
        .iter()
        .filter(|a| a.position.segment != first)
        .collect();
    assert_eq!(records.len(), survivors.len());
    assert!(
        records
            .iter()
            .zip(survivors)
            .all(|(r, a)| r.position == a.position)
    );
}

#[test]
fn group_commit_from_many_threads_reaches_the_last_sequence() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), small_segments(64 * 1024));
    let log = Arc::new(log);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_by_listener = Arc::clone(&seen);
    log.on_synced(move |sequence, _written| seen_by_listener.lock().push(sequence));

    const THREADS: usize = 4;
    const PER_THREAD: usize = 500;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|i| {
                        let payload = Bytes::from(format!("thread {t} message {i}"));
                        (log.append_durable(t as u8, payload).expect("append"), t, i)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut appended: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("appender thread"))
        .collect();
    let last = (THREADS * PER_THREAD) as u64;

    // No sync() call: durable appends alone must get there.
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.synced() < last {
        assert!(
            Instant::now() < deadline,
            "synced stuck at {}",
            log.synced()
        );
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(log.synced(), last);
    let seen = seen.lock().clone();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(seen.last(), Some(&last));

    // Sequences are unique and positions follow them.
    appended.sort_by_key(|(a, _, _)| a.sequence);
    assert!(
        appended
            .windows(2)
            .all(|w| w[0].0.position < w[1].0.position)
    );
    assert_eq!(appended.len() as u64, last);
    let log = Arc::into_inner(log).expect("only handle");
    log.close().expect("close");

    let (_log, records) = open(tmp.path(), small_segments(64 * 1024));
    assert_eq!(records.len(), appended.len());
    for (record, (a, t, i)) in records.iter().zip(&appended) {
        assert_eq!(record.position, a.position);
        assert_eq!(record.kind, *t as u8);
        assert_eq!(record.payload, format!("thread {t} message {i}"));
    }
}

#[test]
fn unsynced_appends_are_written_in_order_and_synced_on_request() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), LogConfig::default());
    let a = log.append(1, payload(0)).expect("append");
    let b = log.append_durable(1, payload(1)).expect("append");
    let c = log.append(1, payload(2)).expect("append");
    assert!(a.position < b.position && b.position < c.position);
    assert_eq!(log.sync().expect("sync"), c.sequence);
    assert_eq!(log.synced(), c.sequence);
}

#[test]
fn oversized_records_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        max_record_size: 100,
        ..LogConfig::default()
    };
    let (log, _) = open(tmp.path(), config);
    assert!(log.append_durable(0, Bytes::from(vec![0; 100])).is_ok());
    assert!(matches!(
        log.append_durable(0, Bytes::from(vec![0; 101])),
        Err(StoreError::RecordTooLarge { len: 101, max: 100 })
    ));
}

#[test]
fn reopen_after_drop_without_close_keeps_everything() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(tmp.path(), small_segments(1024));
    let appended: Vec<Appended> = (0..300)
        .map(|i| {
            if i % 2 == 0 {
                log.append_durable((i % 5) as u8, payload(i))
            } else {
                log.append((i % 5) as u8, payload(i))
            }
            .expect("append")
        })
        .collect();
    drop(log);
    let (_log, records) = open(tmp.path(), small_segments(1024));
    assert_recovered(&records, &appended);
}

#[test]
fn writer_failure_is_reported_and_synced_stops_moving() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let (log, _) = open(&dir, small_segments(100));
    let first = log.append_durable(0, payload(1)).expect("append");
    assert_eq!(log.sync().expect("sync"), first.sequence);

    // The next segment cannot be created once the directory is gone.
    fs::remove_dir_all(&dir).expect("remove store directory");
    let second = log
        .append_durable(0, Bytes::from(vec![1; 200]))
        .expect("append");
    assert_ne!(second.position.segment, first.position.segment);
    assert!(matches!(log.sync(), Err(StoreError::Writer(_))));
    assert!(log.health().is_err());
    assert_eq!(log.synced(), first.sequence);
    assert!(matches!(
        log.append_durable(0, payload(2)),
        Err(StoreError::Writer(_))
    ));
    assert!(matches!(log.close(), Err(StoreError::Writer(_))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Cutting a valid log anywhere (as a crash can) recovers exactly the records that lie
    /// wholly before the cut, and the recovered log is clean: a second open finds the same.
    #[test]
    fn any_prefix_recovers_exactly_the_complete_records(
        records in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..80)), 0..40),
        segment_size in prop::sample::select(vec![64u64, 300, 1 << 20]),
        cut in any::<prop::sample::Index>(),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = small_segments(segment_size);
        let (log, _) = open(tmp.path(), config.clone());
        let appended: Vec<Appended> = records
            .iter()
            .map(|(kind, data)| log.append(*kind, Bytes::from(data.clone())).expect("append"))
            .collect();
        log.close().expect("close");

        let files = segment::list(tmp.path()).expect("list");
        let total: u64 = files.iter().map(|&(_, len)| len).sum();
        let mut remaining = cut.index(total as usize + 1) as u64;
        // Where the cut falls: (segment, bytes kept in it); segments after it are deleted.
        let mut cut_at = None;
        for &(id, len) in &files {
            match cut_at {
                Some(_) => fs::remove_file(segment::path(tmp.path(), id)).expect("remove"),
                None if remaining < len => {
                    truncate(tmp.path(), id, remaining);
                    cut_at = Some((id, remaining));
                }
                None => remaining -= len,
            }
        }
        let kept = |a: &Appended| match cut_at {
            None => true,
            Some((id, len)) => {
                let end = a.position.offset + RECORD_HEADER_LEN as u64 + u64::from(a.position.len);
                a.position.segment < id || (a.position.segment == id && end <= len)
            }
        };
        let expected: Vec<Record> = appended
            .iter()
            .zip(&records)
            .filter(|(a, _)| kept(a))
            .map(|(a, (kind, data))| Record {
                position: a.position,
                kind: *kind,
                payload: Bytes::from(data.clone()),
            })
            .collect();

        let (log, recovered) = open(tmp.path(), config.clone());
        prop_assert_eq!(&recovered, &expected);
        log.close().expect("close");
        let (_log, again) = open(tmp.path(), config);
        prop_assert_eq!(&again, &expected);
    }
}
