//! The ready messages of a queue, in delivery order: plain FIFO, or by priority when the queue
//! was declared with `x-max-priority` (see `priority.rs`).

use std::collections::VecDeque;

use super::Entry;
use super::priority::PriorityLevels;

pub(crate) enum ReadyMessages {
    Fifo(VecDeque<Entry>),
    Priority(PriorityLevels),
}

impl ReadyMessages {
    pub fn new(max_priority: Option<u8>) -> Self {
        match max_priority {
            Some(max) if max > 0 => ReadyMessages::Priority(PriorityLevels::new(max)),
            _ => ReadyMessages::Fifo(VecDeque::new()),
        }
    }

    pub fn push_back(&mut self, entry: Entry) {
        match self {
            ReadyMessages::Fifo(q) => q.push_back(entry),
            ReadyMessages::Priority(p) => p.push_back(entry),
        }
    }

    /// Puts a message back where its sequence number says it was.
    pub fn requeue(&mut self, entry: Entry) {
        match self {
            ReadyMessages::Fifo(q) => {
                let at = q.partition_point(|e| e.seq < entry.seq);
                q.insert(at, entry);
            }
            ReadyMessages::Priority(p) => p.requeue(entry),
        }
    }

    pub fn front(&self) -> Option<&Entry> {
        match self {
            ReadyMessages::Fifo(q) => q.front(),
            ReadyMessages::Priority(p) => p.front(),
        }
    }

    pub fn pop_front(&mut self) -> Option<Entry> {
        match self {
            ReadyMessages::Fifo(q) => q.pop_front(),
            ReadyMessages::Priority(p) => p.pop_front(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ReadyMessages::Fifo(q) => q.len(),
            ReadyMessages::Priority(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
