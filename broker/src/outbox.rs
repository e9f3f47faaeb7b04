//! What other parts of the broker hand to one connection: deliveries from queues, consumer
//! cancellations, alarms. Queues push here under their own lock; the connection's task drains
//! it, assigns delivery tags and encodes frames. Bounded in bytes so a slow reader stops
//! receiving deliveries and messages stay in their queues instead of piling up here.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;
use rmqd_codec::ShortStr;
use tokio::sync::Notify;

use crate::queue::{Entry, Queue};

/// Deliveries beyond this many bytes wait in their queue until the connection catches up.
const OUTBOX_BYTE_BUDGET: usize = 4 << 20;

pub(crate) struct Delivery {
    pub channel: u16,
    pub consumer_tag: ShortStr,
    pub queue: Arc<Queue>,
    pub entry: Entry,
    pub ack_required: bool,
    /// For a delivery that needs no ack: the log sequence of the ack record written as it was
    /// sent. The consumer's output waits for it, so a message a client has seen under
    /// auto-ack does not come back after kill -9.
    pub settled_at: Option<u64>,
}

pub(crate) enum Event {
    Deliver(Delivery),
    /// The queue behind this consumer went away; tell the client with basic.cancel.
    ConsumerCancelled {
        channel: u16,
        consumer_tag: ShortStr,
    },
    /// The memory alarm flipped. The connection reads the current state when it handles this:
    /// flips racing on two threads may be broadcast out of order, but the last notice handled
    /// always sees the latest state.
    MemoryAlarmChanged,
    /// An operator (or shutdown) closes the connection with this code and text.
    ForceClose {
        code: u16,
        text: String,
    },
}

#[derive(Default)]
struct Pending {
    events: VecDeque<Event>,
    bytes: usize,
}

#[derive(Default)]
pub(crate) struct Outbox {
    pending: Mutex<Pending>,
    /// A copy of `pending.bytes`, written under the lock, so queues can check for room on every
    /// delivery without taking it.
    bytes: AtomicUsize,
    notify: Notify,
    /// A queue skipped one of our consumers for want of room; once we drain, those queues
    /// must be asked to dispatch again.
    starved: AtomicBool,
}

impl Outbox {
    pub fn new() -> Arc<Self> {
        Arc::new(Outbox::default())
    }

    /// Wakes the connection without an event: something it waits for (the disk) is done.
    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }

    pub fn has_room(&self) -> bool {
        let room = self.bytes.load(Ordering::Acquire) < OUTBOX_BYTE_BUDGET;
        if !room {
            self.starved.store(true, Ordering::Release);
        }
        room
    }

    pub fn push(&self, event: Event) {
        let size = match &event {
            Event::Deliver(d) => d.entry.message.body().len() + 64,
            _ => 64,
        };
        let mut pending = self.pending.lock();
        pending.bytes += size;
        self.bytes.store(pending.bytes, Ordering::Release);
        let was_empty = pending.events.is_empty();
        pending.events.push_back(event);
        drop(pending);
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// Takes everything pending.
    pub fn drain(&self, into: &mut VecDeque<Event>) {
        let mut pending = self.pending.lock();
        pending.bytes = 0;
        self.bytes.store(0, Ordering::Release);
        into.append(&mut pending.events);
    }

    pub fn take_starved(&self) -> bool {
        self.starved.swap(false, Ordering::AcqRel)
    }

    /// Resolves once something is pushed (or was pushed since the last wait).
    pub async fn wait(&self) {
        self.notify.notified().await
    }
}
