//! What rmqd keeps on disk: durable topology in `meta/`, persistent messages and their acks in
//! `messages/`, both segment logs (`crate::store`). The design and its reasons are in
//! `broker/STORAGE.md`.

mod compact;
mod records;
mod recovery;
mod space;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use rmqd_codec::{Method, ShortStr};
use tracing::{debug, error, info, warn};

use crate::auth::{User, UserChange};
use crate::definitions::{Kept, PolicyDef};
use crate::memory::MemoryTracker;
use crate::message::Message;
use crate::outbox::Outbox;
use crate::policy::Policy;
use crate::store::{Appended, LogConfig, Position, SegmentLog, StoreError};
use records::{UserRecord, message_kind, meta_kind};
pub(crate) use recovery::{Recovered, rebuild};
use space::SegmentBook;

/// Sizes the store works with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreLimits {
    /// Message log segment size; space is reclaimed a segment at a time.
    pub segment_size: u64,
    /// Bytes of ready messages a durable queue keeps in memory; the rest wait on disk.
    pub queue_memory_limit: usize,
    /// The largest body a client may publish: every such message must fit in one record.
    pub max_message_size: usize,
}

impl StoreLimits {
    /// Room in a publish record beyond the body: its id, the ids of the queues it went to,
    /// the exchange and routing key, and the encoded properties.
    const RECORD_OVERHEAD: usize = 2 << 20;

    /// The message log's largest record, so that no message a client may publish is refused
    /// by the log (a refused persistent message would be confirmed without being stored).
    fn max_record_size(&self) -> u32 {
        let needed = self.max_message_size.saturating_add(Self::RECORD_OVERHEAD);
        u32::try_from(needed)
            .unwrap_or(u32::MAX)
            .max(LogConfig::DEFAULT_MAX_RECORD_SIZE)
    }
}

struct Book {
    next_message_id: u64,
    segments: SegmentBook,
    /// The log's current segment when space was last reclaimed.
    reclaimed_under: Option<u64>,
}

/// A connection to wake once the message log is durable up to a sequence.
struct DiskWaiter {
    until: DiskWait,
    outbox: Arc<Outbox>,
}

/// How far the message log must be for a connection's output to go out: fsynced up to what it
/// published (confirms promise survival of a power cut), written up to what it acked (an ack
/// must survive the broker being killed before anything the client sees next).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DiskWait {
    pub synced: u64,
    pub written: u64,
}

impl DiskWait {
    /// Output from here on waits until the log has written `sequence`, if there is one.
    pub(crate) fn hold_until_written(&mut self, sequence: Option<u64>) {
        if let Some(sequence) = sequence {
            self.written = self.written.max(sequence);
        }
    }

    fn reached(&self, synced: u64, written: u64) -> bool {
        synced >= self.synced && written.max(synced) >= self.written
    }
}

/// The durable part of a vhost, as the methods that would declare it.
pub(crate) struct DurableTopology {
    /// Exchange declarations, then bindings.
    pub methods: Vec<Method>,
    /// Queue declarations with the ids their messages are recorded under.
    pub queues: Vec<(u64, Method)>,
    pub policies: Vec<Arc<Policy>>,
}

/// What the topology log holds besides vhosts: for a rewrite.
pub(crate) struct DurableAccess {
    pub users: Vec<User>,
    pub initialised: bool,
    pub kept: Kept,
}

/// Topology records beyond twice the live ones that are tolerated before a rewrite at startup.
const COMPACT_SLACK: usize = 1000;

pub struct DiskStore {
    dir: PathBuf,
    /// `None` only while a rewrite swaps it.
    meta: Mutex<Option<SegmentLog>>,
    messages: SegmentLog,
    /// Message ids and what each segment still holds. Taken around every message append, so
    /// that ids follow log order and each record's segment is known.
    book: Mutex<Book>,
    next_queue_id: AtomicU64,
    /// Off while recovery replays the logs through the same code that wrote them.
    recording: AtomicBool,
    limits: StoreLimits,
    /// Charged for messages read back from disk.
    memory: Arc<MemoryTracker>,
    /// Connections whose output waits for `messages` to be durable up to a sequence.
    waiters: Arc<Mutex<Vec<DiskWaiter>>>,
}

impl DiskStore {
    /// The data dir.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens (or creates) the store under `dir` and reads back what it holds; the caller
    /// rebuilds the broker from the returned records.
    pub(crate) fn open(
        dir: &Path,
        limits: StoreLimits,
        memory: Arc<MemoryTracker>,
    ) -> Result<(DiskStore, Recovered), StoreError> {
        let segment_size = limits.segment_size;
        let mut recovered = Recovered::new(limits.queue_memory_limit);
        compact::settle_leftovers(dir)
            .map_err(|e| StoreError::io("settling an interrupted rewrite in", dir, e))?;
        let meta = SegmentLog::open(dir.join("meta"), LogConfig::default(), |record| {
            recovered.add_meta(record)
        })?;
        let config = LogConfig {
            segment_size,
            max_record_size: limits.max_record_size(),
            ..LogConfig::default()
        };
        let messages = SegmentLog::open(dir.join("messages"), config, |record| {
            recovered.add_message(record)
        })?;
        let waiters: Arc<Mutex<Vec<DiskWaiter>>> = Arc::default();
        let woken = Arc::clone(&waiters);
        messages.on_synced(move |synced, written| {
            woken.lock().retain(|waiter| {
                let done = waiter.until.reached(synced, written);
                if done {
                    waiter.outbox.wake();
                }
                !done
            });
        });
        let store = DiskStore {
            dir: dir.to_path_buf(),
            meta: Mutex::new(Some(meta)),
            messages,
            book: Mutex::new(Book {
                next_message_id: recovered.max_message_id + 1,
                segments: std::mem::take(&mut recovered.segments),
                reclaimed_under: None,
            }),
            next_queue_id: AtomicU64::new(recovered.max_queue_id + 1),
            recording: AtomicBool::new(false),
            limits,
            memory,
            waiters,
        };
        Ok((store, recovered))
    }

    /// Starts writing changes, once recovery has replayed the logs.
    pub(crate) fn start_recording(&self) {
        self.recording.store(true, Ordering::Release);
    }

    fn recording(&self) -> bool {
        self.recording.load(Ordering::Acquire)
    }

    /// Appends a topology record and waits for it to be on disk: declare-ok must not promise
    /// what a crash could take back. Topology changes are rare, so blocking here is cheaper
    /// than threading the wait through the channel.
    fn write_meta(&self, kind: u8, payload: bytes::Bytes) {
        if !self.recording() {
            return;
        }
        let meta = self.meta.lock();
        let Some(meta) = meta.as_ref() else {
            return;
        };
        let written = meta.append_durable(kind, payload).and_then(|_| meta.sync());
        if let Err(err) = written {
            error!("cannot record a topology change: {err}");
        }
    }

    /// Rewrites the topology log as `vhosts` with their durable exchanges, queues and bindings
    /// (what [`Vhost::durable_topology`](crate::vhost::Vhost) lists), when replaying it has
    /// become mostly history.
    pub(crate) fn compact_meta(
        &self,
        replayed: usize,
        vhosts: &[(ShortStr, DurableTopology)],
        access: &DurableAccess,
    ) -> Result<(), StoreError> {
        let mut records = Vec::new();
        if access.initialised {
            records.push((meta_kind::INITIALISED, bytes::Bytes::new()));
        }
        if !access.kept.is_empty() {
            records.push((meta_kind::KEPT, records::encode_json(&access.kept)));
        }
        for user in &access.users {
            records.push((
                meta_kind::USER,
                records::encode_json(&UserRecord::from_user(user)),
            ));
        }
        for (
            vhost,
            DurableTopology {
                methods,
                queues,
                policies,
            },
        ) in vhosts
        {
            records.push((meta_kind::VHOST, records::encode_in_vhost(vhost, &[])));
            for policy in policies {
                records.push((
                    meta_kind::POLICY,
                    records::encode_json(&PolicyDef::from_policy(&vhost.to_string_lossy(), policy)),
                ));
            }
            let declare = |m: &&Method| matches!(m, Method::ExchangeDeclare(_));
            for method in methods.iter().filter(declare) {
                records.push((
                    meta_kind::METHOD,
                    records::encode_method_record(vhost, None, method),
                ));
            }
            for (id, method) in queues {
                records.push((
                    meta_kind::QUEUE,
                    records::encode_method_record(vhost, Some(*id), method),
                ));
            }
            for method in methods.iter().filter(|m| !declare(m)) {
                records.push((
                    meta_kind::METHOD,
                    records::encode_method_record(vhost, None, method),
                ));
            }
        }
        if replayed <= 2 * records.len() + COMPACT_SLACK {
            return Ok(());
        }
        let mut meta = self.meta.lock();
        if let Some(old) = meta.take() {
            old.close()?;
        }
        let live = records.len();
        *meta = Some(compact::rewrite(&self.dir, records)?);
        info!(replayed, live, "rewrote the topology log");
        Ok(())
    }

    pub(crate) fn vhost_added(&self, name: &ShortStr) {
        self.write_meta(meta_kind::VHOST, records::encode_in_vhost(name, &[]));
    }

    pub(crate) fn policy_set(&self, vhost: &ShortStr, policy: &Policy) {
        self.write_meta(
            meta_kind::POLICY,
            records::encode_json(&PolicyDef::from_policy(&vhost.to_string_lossy(), policy)),
        );
    }

    pub(crate) fn policy_cleared(&self, vhost: &ShortStr, name: &str) {
        self.write_meta(
            meta_kind::POLICY_CLEARED,
            records::encode_in_vhost(vhost, name.as_bytes()),
        );
    }

    /// Records a change to users, as the users' journal.
    pub(crate) fn user_changed(&self, change: UserChange<'_>) {
        match change {
            UserChange::Saved(user) => self.write_meta(
                meta_kind::USER,
                records::encode_json(&UserRecord::from_user(user)),
            ),
            UserChange::Deleted(name) => self.write_meta(
                meta_kind::USER_DELETED,
                bytes::Bytes::copy_from_slice(name.as_bytes()),
            ),
        }
    }

    /// Records the kept definitions, whole: they change only on import and vhost deletion.
    pub(crate) fn kept_changed(&self, kept: &Kept) {
        self.write_meta(meta_kind::KEPT, records::encode_json(kept));
    }

    /// Records that the default user and vhost have been created.
    pub(crate) fn initialised(&self) {
        self.write_meta(meta_kind::INITIALISED, bytes::Bytes::new());
    }

    pub(crate) fn vhost_deleted(&self, name: &ShortStr) {
        self.write_meta(
            meta_kind::VHOST_DELETED,
            records::encode_in_vhost(name, &[]),
        );
    }

    /// exchange.declare/delete, queue.bind/unbind, exchange.bind/unbind of durable things.
    pub(crate) fn topology_changed(&self, vhost: &ShortStr, method: &Method) {
        self.write_meta(
            meta_kind::METHOD,
            records::encode_method_record(vhost, None, method),
        );
    }

    /// A durable queue was declared; returns the id its messages are recorded under.
    pub(crate) fn queue_declared(&self, vhost: &ShortStr, declare: &Method) -> u64 {
        let id = self.next_queue_id.fetch_add(1, Ordering::Relaxed);
        self.write_meta(
            meta_kind::QUEUE,
            records::encode_method_record(vhost, Some(id), declare),
        );
        id
    }

    pub(crate) fn queue_deleted(&self, id: u64) {
        self.write_meta(meta_kind::QUEUE_DELETED, records::encode_queue_deleted(id));
    }

    pub(crate) fn queue_memory_limit(&self) -> usize {
        self.limits.queue_memory_limit
    }

    /// Reads back a message a long queue left on disk; `None` (logged) if it cannot.
    pub(crate) fn load(&self, id: u64, at: Position) -> Option<Message> {
        let payload = match self.messages.read(at) {
            Ok(payload) => payload,
            Err(err) => {
                error!(
                    id,
                    segment = at.segment,
                    offset = at.offset,
                    "cannot read a message back: {err}"
                );
                return None;
            }
        };
        match records::decode_message(message_kind::PUBLISH, payload) {
            Ok(records::MessageRecord::Publish {
                id: stored,
                message,
                ..
            }) if stored == id => Message::recovered(message, id, &self.memory),
            _ => {
                error!(
                    id,
                    segment = at.segment,
                    offset = at.offset,
                    "the record read back is not that message"
                );
                None
            }
        }
    }

    /// Records a persistent message routed to the durable queues `queues` (by id). Returns the
    /// record's sequence (to wait for before confirming) and position.
    pub(crate) fn publish(&self, message: &Message, queues: &[u64]) -> Option<Appended> {
        let mut book = self.book.lock();
        let id = book.next_message_id;
        book.next_message_id += 1;
        let record = records::encode_publish(id, queues, message.stored());
        let appended = self.append(message_kind::PUBLISH, record, true)?;
        message.set_stored_id(id);
        book.segments.note_publish(id, appended.position.segment);
        book.segments.hold(id, queues.len() as u64);
        Some(appended)
    }

    /// Records that a message left queue `queue` for good. Not fsynced on its own account (a
    /// power cut may bring an acked message back, as with RabbitMQ); returns the sequence a
    /// caller waits to see written.
    pub(crate) fn ack(&self, queue: u64, message: u64) -> Option<u64> {
        let mut book = self.book.lock();
        let record = records::encode_ack(queue, message);
        let appended = self.append(message_kind::ACK, record, false)?;
        book.segments.note_ack(message, appended.position.segment);
        if book.segments.release(message) {
            self.reclaim_after_emptying(&mut book, message);
        }
        Some(appended.sequence)
    }

    /// A queue let go of a message without an ack record: the queue itself was deleted, which
    /// its metadata record says for all its messages at once.
    pub(crate) fn release(&self, message: u64) {
        let mut book = self.book.lock();
        if book.segments.release(message) {
            self.reclaim_after_emptying(&mut book, message);
        }
    }

    /// The segment of `message` holds nothing live any more. While a consumer keeps up, that
    /// is the current segment on almost every ack: it cannot be deleted, nor does emptying it
    /// free any other, so a pass is needed only when the log has moved to a new segment since
    /// the last one.
    fn reclaim_after_emptying(&self, book: &mut Book, message: u64) {
        let current = self.messages.current_segment_id();
        let emptied_current = book.segments.segment_of(message) == Some(current);
        if emptied_current && book.reclaimed_under == Some(current) {
            return;
        }
        self.reclaim(book);
    }

    /// Deletes the segments nothing needs any more.
    fn reclaim(&self, book: &mut Book) {
        let on_disk: Vec<u64> = self.messages.segments().iter().map(|s| s.id).collect();
        let current = self.messages.current_segment_id();
        book.reclaimed_under = Some(current);
        for segment in book.segments.deletable(&on_disk, current) {
            match self.messages.remove_segment(segment) {
                Ok(()) => {
                    debug!(segment, "message log segment reclaimed");
                    book.segments.forget_segment(segment);
                }
                Err(err) => warn!(segment, "cannot reclaim a message log segment: {err}"),
            }
        }
    }

    /// Deletes what recovery found no longer needed.
    pub(crate) fn reclaim_after_recovery(&self) {
        let mut book = self.book.lock();
        self.reclaim(&mut book);
    }

    /// Counts a recovered message held by one more queue.
    pub(crate) fn hold_recovered(&self, message: u64) {
        self.book.lock().segments.hold(message, 1);
    }

    fn append(&self, kind: u8, record: bytes::Bytes, durable: bool) -> Option<Appended> {
        let appended = if durable {
            self.messages.append_durable(kind, record)
        } else {
            self.messages.append(kind, record)
        };
        match appended {
            Ok(appended) => Some(appended),
            Err(err) => {
                error!("cannot record a message: {err}");
                None
            }
        }
    }

    /// Writes and fsyncs both logs.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        if let Some(meta) = self.meta.lock().as_ref() {
            meta.sync()?;
        }
        self.messages.sync()?;
        Ok(())
    }

    /// Whether the message log has reached `until`.
    pub(crate) fn reached(&self, until: DiskWait) -> bool {
        until.reached(self.messages.synced(), self.messages.written())
    }

    /// Wakes `outbox` once the message log reaches `until`. (If the disk failed, nothing moves
    /// again: held confirms stay unsent, as they must.)
    pub(crate) fn wake_when(&self, until: DiskWait, outbox: &Arc<Outbox>) {
        self.waiters.lock().push(DiskWaiter {
            until,
            outbox: Arc::clone(outbox),
        });
        if self.reached(until) {
            // Reached between the caller's check and the push: the writer did not see us.
            outbox.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_a_client_may_publish_fits_in_one_record() {
        for max_message_size in [16 << 20, 128 << 20, 512 << 20, 1 << 30] {
            let limits = StoreLimits {
                segment_size: LogConfig::DEFAULT_SEGMENT_SIZE,
                queue_memory_limit: 0,
                max_message_size,
            };
            let room = limits.max_record_size() as usize;
            assert!(
                room >= max_message_size + StoreLimits::RECORD_OVERHEAD,
                "{max_message_size}: {room}"
            );
        }
    }
}
