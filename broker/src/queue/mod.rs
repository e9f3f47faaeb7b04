//! A queue: ready messages in order, its consumers, and round-robin dispatch under prefetch.
//!
//! Each queue has its own lock. Dispatch runs inside whichever task changed the queue (a
//! publisher's, an acker's) and hands deliveries to the consumers' connections through their
//! outboxes, so a message reaches its consumer without hopping through another task.

pub(crate) mod arguments;
pub(crate) mod credit;
mod paged;
mod priority;
mod ready;

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use rmqd_codec::{FieldTable, ShortStr};
use tracing::warn;

use crate::connection::ConnectionId;
use crate::durable::DiskStore;
use crate::message::Message;
use crate::outbox::{Delivery, Event, Outbox};
use crate::policy::{Policy, QueueLimits};
use crate::store::Position;
use crate::vhost::QueueSpec;
pub(crate) use arguments::QueueSettings;
pub(crate) use credit::Credit;
use paged::{OnDisk, PagedTail, Slot};
use ready::ReadyMessages;

/// A message's place in one queue. `seq` orders the queue, so a requeued message goes back
/// where it was.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub seq: u64,
    pub message: Arc<Message>,
    pub redelivered: bool,
    pub expires_at: Option<Instant>,
}

pub(crate) struct Consumer {
    pub tag: ShortStr,
    pub connection: ConnectionId,
    pub channel: u16,
    pub outbox: Arc<Outbox>,
    pub ack_required: bool,
    pub exclusive: bool,
    pub credit: Arc<Credit>,
    /// The channel's prefetch (basic.qos global=true), shared by its consumers.
    pub channel_credit: Arc<Credit>,
}

struct State {
    ready: ReadyMessages,
    /// Behind `ready`: messages of a long durable queue that wait on disk.
    tail: PagedTail,
    /// Bytes of the messages in `ready`.
    ready_bytes: usize,
    next_seq: u64,
    consumers: Vec<Consumer>,
    /// Where the next round-robin search starts.
    cursor: usize,
    unacked: usize,
    had_consumers: bool,
    deleted: bool,
    last_used: Option<Instant>,
    /// The policy that applies, if any; set at declare and whenever policies change.
    policy: Option<Arc<Policy>>,
    /// The queue's own limits and its policy's, combined: what TTL and expiry obey.
    limits: QueueLimits,
}

pub struct Queue {
    pub name: ShortStr,
    pub vhost: ShortStr,
    pub durable: bool,
    pub auto_delete: bool,
    pub exclusive_owner: Option<ConnectionId>,
    pub arguments: FieldTable,
    /// What the queue's `x-` arguments asked for; a policy may tighten some of it.
    pub(crate) settings: QueueSettings,
    /// Set for a durable queue when the broker has a data dir: its persistent messages are
    /// recorded there.
    persisted: Option<Persisted>,
    state: Mutex<State>,
}

pub(crate) struct Persisted {
    pub store: Arc<DiskStore>,
    /// The id the message log knows this queue by.
    pub id: u64,
    /// Bytes of ready messages kept in memory; beyond them, persistent messages wait on disk.
    pub memory_limit: usize,
}

/// Counts for queue.declare-ok, purge-ok, delete-ok and listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    pub ready: u32,
    pub unacked: u32,
    pub consumers: u32,
}

/// What `rabbitmqctl list_queues` and `list_consumers` show of a queue.
pub(crate) struct QueueListing {
    pub counts: QueueCounts,
    /// Bytes of message data the queue holds in memory.
    pub memory: usize,
    pub consumers: Vec<ConsumerListing>,
}

pub(crate) struct ConsumerListing {
    pub tag: ShortStr,
    pub connection: ConnectionId,
    pub channel: u16,
    pub ack_required: bool,
    pub exclusive: bool,
    pub prefetch: u16,
}

/// Why basic.consume was refused.
pub(crate) enum ConsumeRefused {
    /// The queue has an exclusive consumer, or the new consumer asks for exclusivity and others exist.
    ExclusiveInUse,
    Deleted,
}

impl Queue {
    /// A new queue as `spec` declares it. RabbitMQ treats a durable exclusive queue as transient.
    pub(crate) fn new(
        name: ShortStr,
        vhost: ShortStr,
        spec: &QueueSpec<'_>,
        owner: ConnectionId,
        settings: QueueSettings,
        persisted: Option<Persisted>,
        now: Instant,
    ) -> Arc<Queue> {
        let max_priority = settings.max_priority;
        let limits = settings.limits_under(None);
        Arc::new(Queue {
            name,
            vhost,
            durable: spec.durable && !spec.exclusive,
            auto_delete: spec.auto_delete,
            exclusive_owner: spec.exclusive.then_some(owner),
            arguments: spec.arguments.clone(),
            settings,
            persisted,
            state: Mutex::new(State {
                ready: ReadyMessages::new(max_priority),
                tail: PagedTail::default(),
                ready_bytes: 0,
                next_seq: 0,
                consumers: Vec::new(),
                cursor: 0,
                unacked: 0,
                had_consumers: false,
                deleted: false,
                last_used: Some(now),
                policy: None,
                limits,
            }),
        })
    }

    pub(crate) fn persisted_id(&self) -> Option<u64> {
        self.persisted.as_ref().map(|p| p.id)
    }

    /// Records that `entry` left this queue for good; returns the log sequence of the record.
    pub(crate) fn forget(&self, entry: &Entry) -> Option<u64> {
        let persisted = self.persisted.as_ref()?;
        let id = entry.message.stored_id()?;
        persisted.store.ack(persisted.id, id)
    }

    /// Lets go of a message's record without an ack record (the queue is deleted).
    fn release(&self, entry: &Entry) {
        if let Some(p) = &self.persisted
            && let Some(id) = entry.message.stored_id()
        {
            p.store.release(id);
        }
    }

    /// The queue is gone: its messages are no longer recorded.
    pub(crate) fn record_deleted(&self) {
        if let Some(p) = &self.persisted {
            p.store.queue_deleted(p.id);
        }
    }

    /// Puts back a message recovered from disk, behind those already recovered.
    pub(crate) fn recover(&self, message: Arc<Message>, at: Position, now: Instant) {
        let mut st = self.state.lock();
        let expires_at = Self::expiry_for(&st, &message, now);
        let entry = Entry {
            seq: 0,
            message,
            redelivered: true,
            expires_at,
        };
        self.push_ready(&mut st, entry, Some(at));
    }

    /// Puts back a recovered message whose body recovery left on disk. Its own `expiration`
    /// is in its properties, on disk too: it counts from when the message is read back.
    pub(crate) fn recover_on_disk(&self, id: u64, at: Position, now: Instant) {
        let mut st = self.state.lock();
        let expires_at = st.limits.message_ttl.map(|ttl| now + ttl);
        match OnDisk::new(id, at, true, expires_at) {
            Some(on_disk) => st.tail.push_back(Slot::OnDisk(on_disk)),
            None => {
                warn!(queue = %self.name, id, "a recovered message's position does not fit; dropped")
            }
        }
    }

    /// Adds a message behind every other ready one: in memory, or (for a long durable queue,
    /// when it is on disk at `at`) as a reference to its record.
    fn push_ready(&self, st: &mut State, mut entry: Entry, at: Option<Position>) {
        let size = entry.message.size();
        let pageable = || {
            let persisted = self.persisted.as_ref()?;
            let id = entry.message.stored_id()?;
            let at = at?;
            let over = !st.tail.is_empty() || st.ready_bytes + size > persisted.memory_limit;
            if !over || self.settings.max_priority.is_some() {
                return None;
            }
            OnDisk::new(id, at, entry.redelivered, entry.expires_at)
        };
        if let Some(on_disk) = pageable() {
            st.tail.push_back(Slot::OnDisk(on_disk));
        } else if !st.tail.is_empty() {
            st.tail.push_back(Slot::InMemory(Box::new(entry)));
        } else {
            entry.seq = st.next_seq;
            st.next_seq += 1;
            st.ready_bytes += size;
            st.ready.push_back(entry);
        }
    }

    /// The next ready message, reading a batch back from disk when only the tail is left.
    fn pop_ready(&self, st: &mut State) -> Option<Entry> {
        if st.ready.is_empty() {
            self.page_in(st);
        }
        let entry = st.ready.pop_front()?;
        st.ready_bytes = st.ready_bytes.saturating_sub(entry.message.size());
        Some(entry)
    }

    /// Moves the head of the tail into memory: up to half the memory limit at a time, so that
    /// reading back stays in large, rare batches.
    fn page_in(&self, st: &mut State) {
        let Some(persisted) = &self.persisted else {
            return;
        };
        let budget = (persisted.memory_limit / 2).max(1);
        while st.ready_bytes < budget {
            let Some(slot) = st.tail.pop_front() else {
                return;
            };
            let mut entry = match slot {
                Slot::InMemory(entry) => *entry,
                Slot::OnDisk(on_disk) => {
                    let Some(message) = persisted.store.load(on_disk.id, on_disk.position()) else {
                        // Unreadable (logged by the store): count it gone rather than stall the queue.
                        persisted.store.ack(persisted.id, on_disk.id);
                        continue;
                    };
                    let expires_at = on_disk
                        .expires_at
                        .or_else(|| message.ttl().map(|ttl| Instant::now() + ttl));
                    Entry {
                        seq: 0,
                        message: Arc::new(message),
                        redelivered: on_disk.redelivered,
                        expires_at,
                    }
                }
            };
            entry.seq = st.next_seq;
            st.next_seq += 1;
            st.ready_bytes += entry.message.size();
            st.ready.push_back(entry);
        }
    }

    fn ready_len(st: &State) -> usize {
        st.ready.len() + st.tail.len()
    }

    /// A tail slot leaves the queue for good.
    fn forget_slot(&self, slot: Slot) {
        match slot {
            Slot::InMemory(entry) => {
                self.forget(&entry);
            }
            Slot::OnDisk(on_disk) => {
                if let Some(p) = &self.persisted {
                    p.store.ack(p.id, on_disk.id);
                }
            }
        }
    }

    /// A tail slot goes with its deleted queue.
    fn release_slot(&self, slot: Slot) {
        match slot {
            Slot::InMemory(entry) => self.release(&entry),
            Slot::OnDisk(on_disk) => {
                if let Some(p) = &self.persisted {
                    p.store.release(on_disk.id);
                }
            }
        }
    }

    /// Applies a policy (or none) from now on. Messages already queued keep the expiry they
    /// were given; later ones, and the queue's own expiry, follow the new limits.
    pub(crate) fn apply_policy(&self, policy: Option<Arc<Policy>>) {
        let limits = self.settings.limits_under(policy.as_deref());
        let mut st = self.state.lock();
        st.policy = policy;
        st.limits = limits;
    }

    /// The name of the policy that applies, for listings.
    pub fn policy_name(&self) -> Option<String> {
        self.state.lock().policy.as_ref().map(|p| p.name.clone())
    }

    pub fn counts(&self, now: Instant) -> QueueCounts {
        let mut st = self.state.lock();
        self.drop_expired(&mut st, now);
        QueueCounts {
            ready: Self::ready_len(&st) as u32,
            unacked: st.unacked as u32,
            consumers: st.consumers.len() as u32,
        }
    }

    /// Counts and consumers read under one lock, for listings.
    pub(crate) fn listing(&self, now: Instant) -> QueueListing {
        let mut st = self.state.lock();
        self.drop_expired(&mut st, now);
        QueueListing {
            counts: QueueCounts {
                ready: Self::ready_len(&st) as u32,
                unacked: st.unacked as u32,
                consumers: st.consumers.len() as u32,
            },
            memory: st.ready_bytes,
            consumers: st
                .consumers
                .iter()
                .map(|c| ConsumerListing {
                    tag: c.tag.clone(),
                    connection: c.connection,
                    channel: c.channel,
                    ack_required: c.ack_required,
                    exclusive: c.exclusive,
                    prefetch: c.credit.limit(),
                })
                .collect(),
        }
    }

    pub(crate) fn touch(&self, now: Instant) {
        self.state.lock().last_used = Some(now);
    }

    /// Adds a message at the tail and dispatches. Returns false if the queue was deleted meanwhile.
    /// `at` is where the message's publish record is, if the store has it.
    pub(crate) fn publish(
        self: &Arc<Self>,
        message: Arc<Message>,
        at: Option<Position>,
        now: Instant,
    ) -> bool {
        let mut st = self.state.lock();
        if st.deleted {
            return false;
        }
        let expires_at = Self::expiry_for(&st, &message, now);
        let entry = Entry {
            seq: 0,
            message,
            redelivered: false,
            expires_at,
        };
        self.push_ready(&mut st, entry, at);
        self.dispatch(&mut st, now);
        true
    }

    /// The earlier of the queue's message TTL (`x-message-ttl` or policy) and the message's
    /// `expiration`.
    fn expiry_for(st: &State, message: &Message, now: Instant) -> Option<Instant> {
        arguments::stricter(st.limits.message_ttl, message.ttl()).map(|ttl| now + ttl)
    }

    /// Puts delivered-but-unacked messages back at their original places, marked redelivered.
    pub(crate) fn requeue(
        self: &Arc<Self>,
        entries: impl IntoIterator<Item = Entry>,
        now: Instant,
    ) {
        let mut st = self.state.lock();
        for mut entry in entries {
            st.unacked = st.unacked.saturating_sub(1);
            if st.deleted {
                self.release(&entry);
                continue;
            }
            entry.redelivered = true;
            st.ready_bytes += entry.message.size();
            st.ready.requeue(entry);
        }
        self.dispatch(&mut st, now);
    }

    /// Settles acked (or rejected without requeue) deliveries, then uses the freed credit.
    pub(crate) fn settle(self: &Arc<Self>, count: usize, now: Instant) {
        let mut st = self.state.lock();
        st.unacked = st.unacked.saturating_sub(count);
        self.dispatch(&mut st, now);
    }

    /// Runs dispatch again, after a consumer's credit or its connection's room came back.
    pub(crate) fn kick(self: &Arc<Self>, now: Instant) {
        let mut st = self.state.lock();
        self.dispatch(&mut st, now);
    }

    /// basic.get: the head message, and how many remain ready after it.
    /// basic.get: the head message and the count left behind, plus, without ack, the log
    /// sequence of the ack record its taking wrote.
    pub(crate) fn get(
        &self,
        ack_required: bool,
        now: Instant,
    ) -> Option<(Entry, u32, Option<u64>)> {
        let mut st = self.state.lock();
        st.last_used = Some(now);
        self.drop_expired(&mut st, now);
        let entry = self.pop_ready(&mut st)?;
        let settled_at = if ack_required {
            st.unacked += 1;
            None
        } else {
            self.forget(&entry)
        };
        Some((entry, Self::ready_len(&st) as u32, settled_at))
    }

    pub(crate) fn add_consumer(
        self: &Arc<Self>,
        consumer: Consumer,
        now: Instant,
    ) -> Result<(), ConsumeRefused> {
        let mut st = self.state.lock();
        if st.deleted {
            return Err(ConsumeRefused::Deleted);
        }
        let exclusive_held = st.consumers.iter().any(|c| c.exclusive);
        if exclusive_held || (consumer.exclusive && !st.consumers.is_empty()) {
            return Err(ConsumeRefused::ExclusiveInUse);
        }
        st.consumers.push(consumer);
        st.had_consumers = true;
        st.last_used = Some(now);
        self.dispatch(&mut st, now);
        Ok(())
    }

    /// Removes a consumer. Returns true when this was an auto-delete queue's last consumer, so the
    /// caller must delete the queue.
    pub(crate) fn remove_consumer(
        &self,
        connection: ConnectionId,
        channel: u16,
        tag: &ShortStr,
        now: Instant,
    ) -> bool {
        let mut st = self.state.lock();
        st.consumers
            .retain(|c| !(c.connection == connection && c.channel == channel && c.tag == *tag));
        st.last_used = Some(now);
        self.auto_delete && st.had_consumers && st.consumers.is_empty() && !st.deleted
    }

    /// Drops every ready message; returns how many.
    pub(crate) fn purge(&self) -> u32 {
        let mut st = self.state.lock();
        let n = Self::ready_len(&st);
        while let Some(entry) = st.ready.pop_front() {
            self.forget(&entry);
        }
        while let Some(slot) = st.tail.pop_front() {
            self.forget_slot(slot);
        }
        st.ready_bytes = 0;
        n as u32
    }

    /// Marks the queue deleted and empties it. Returns the ready count it had and its consumers,
    /// whose channels must be told (basic.cancel).
    pub(crate) fn mark_deleted(&self) -> (u32, Vec<Consumer>) {
        let mut st = self.state.lock();
        st.deleted = true;
        let ready = Self::ready_len(&st) as u32;
        while let Some(entry) = st.ready.pop_front() {
            self.release(&entry);
        }
        while let Some(slot) = st.tail.pop_front() {
            self.release_slot(slot);
        }
        st.ready_bytes = 0;
        (ready, std::mem::take(&mut st.consumers))
    }

    pub(crate) fn is_unused(&self) -> bool {
        self.state.lock().consumers.is_empty()
    }

    pub(crate) fn is_empty(&self, now: Instant) -> bool {
        let mut st = self.state.lock();
        self.drop_expired(&mut st, now);
        Self::ready_len(&st) == 0
    }

    /// Whether `x-expires` has run out: no consumers and no use for that long.
    pub(crate) fn has_expired(&self, now: Instant) -> bool {
        let st = self.state.lock();
        let Some(expires) = st.limits.expires else {
            return false;
        };
        st.consumers.is_empty()
            && !st.deleted
            && st
                .last_used
                .is_some_and(|used| now.duration_since(used) >= expires)
    }

    /// Drops expired messages from the head (RabbitMQ expires only from the head too).
    pub(crate) fn expire_messages(&self, now: Instant) {
        let mut st = self.state.lock();
        self.drop_expired(&mut st, now);
    }

    fn drop_expired(&self, st: &mut State, now: Instant) {
        let expired = |at: Option<Instant>| at.is_some_and(|t| t <= now);
        while st.ready.front().is_some_and(|e| expired(e.expires_at)) {
            if let Some(entry) = st.ready.pop_front() {
                st.ready_bytes = st.ready_bytes.saturating_sub(entry.message.size());
                self.forget(&entry);
            }
        }
        if st.ready.is_empty() {
            while st.tail.front().is_some_and(|s| expired(s.expires_at())) {
                if let Some(slot) = st.tail.pop_front() {
                    self.forget_slot(slot);
                }
            }
        }
    }

    fn dispatch(self: &Arc<Self>, st: &mut State, now: Instant) {
        self.drop_expired(st, now);
        while Self::ready_len(st) > 0 {
            let Some(index) = st.next_consumer() else {
                return;
            };
            let Some(entry) = self.pop_ready(st) else {
                let consumer = &st.consumers[index];
                if consumer.ack_required {
                    consumer.credit.release(1);
                    consumer.channel_credit.release(1);
                }
                return;
            };
            if entry.expires_at.is_some_and(|t| t <= now) {
                self.forget(&entry);
                // Credit was taken for it; give it back.
                let consumer = &st.consumers[index];
                if consumer.ack_required {
                    consumer.credit.release(1);
                    consumer.channel_credit.release(1);
                }
                continue;
            }
            let consumer = &st.consumers[index];
            let ack_required = consumer.ack_required;
            let settled_at = if ack_required {
                None
            } else {
                self.forget(&entry)
            };
            let delivery = Delivery {
                channel: consumer.channel,
                consumer_tag: consumer.tag.clone(),
                queue: Arc::clone(self),
                entry,
                ack_required,
                settled_at,
            };
            consumer.outbox.push(Event::Deliver(delivery));
            if ack_required {
                st.unacked += 1;
            }
        }
    }
}

impl State {
    /// The next consumer, round-robin from the cursor, that may take a message now. Takes its
    /// credit if it acks.
    fn next_consumer(&mut self) -> Option<usize> {
        let n = self.consumers.len();
        for step in 0..n {
            let index = (self.cursor + step) % n;
            let c = &self.consumers[index];
            if !c.outbox.has_room() {
                continue;
            }
            if c.ack_required {
                if !c.credit.try_acquire() {
                    continue;
                }
                if !c.channel_credit.try_acquire() {
                    c.credit.release(1);
                    continue;
                }
            }
            self.cursor = index + 1;
            return Some(index);
        }
        None
    }
}
