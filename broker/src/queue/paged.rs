//! The tail of a long durable queue, whose persistent messages stay on disk. Once a queue holds
//! more message bytes in memory than its limit, later persistent messages are kept as a compact
//! reference to their record in the message log; they are read back a batch at a time as the
//! head drains. Order is kept by never letting a message jump the tail: while the tail is not
//! empty, every new message joins it, even one that has to stay in memory (a transient one).

use std::collections::VecDeque;
use std::time::Instant;

use super::Entry;
use crate::store::Position;

/// A persistent message known only by where its publish record is.
pub(crate) struct OnDisk {
    pub id: u64,
    pub segment: u32,
    pub offset: u32,
    pub len: u32,
    pub redelivered: bool,
    pub expires_at: Option<Instant>,
}

impl OnDisk {
    /// `None` if the position does not fit the compact form (segments past 4 GiB); such a
    /// message simply stays in memory.
    pub fn new(
        id: u64,
        at: Position,
        redelivered: bool,
        expires_at: Option<Instant>,
    ) -> Option<OnDisk> {
        Some(OnDisk {
            id,
            segment: u32::try_from(at.segment).ok()?,
            offset: u32::try_from(at.offset).ok()?,
            len: at.len,
            redelivered,
            expires_at,
        })
    }

    pub fn position(&self) -> Position {
        Position {
            segment: u64::from(self.segment),
            offset: u64::from(self.offset),
            len: self.len,
        }
    }
}

pub(crate) enum Slot {
    /// Boxed: rare in a tail (only messages that cannot be paged), and it keeps every slot small.
    InMemory(Box<Entry>),
    OnDisk(OnDisk),
}

impl Slot {
    pub fn expires_at(&self) -> Option<Instant> {
        match self {
            Slot::InMemory(entry) => entry.expires_at,
            Slot::OnDisk(on_disk) => on_disk.expires_at,
        }
    }
}

#[derive(Default)]
pub(crate) struct PagedTail {
    slots: VecDeque<Slot>,
}

impl PagedTail {
    pub fn push_back(&mut self, slot: Slot) {
        self.slots.push_back(slot);
    }

    pub fn pop_front(&mut self) -> Option<Slot> {
        self.slots.pop_front()
    }

    pub fn front(&self) -> Option<&Slot> {
        self.slots.front()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}
