//! `x-max-priority`: a queue that delivers higher `priority` messages first. As in RabbitMQ, a
//! priority above the queue's maximum counts as the maximum, no priority counts as 0, messages
//! of one priority stay first-in first-out, and a requeued message returns to its place within
//! its priority.

use std::collections::VecDeque;

use super::Entry;

pub(crate) struct PriorityLevels {
    /// Index = priority, 0..=max.
    levels: Vec<VecDeque<Entry>>,
    len: usize,
}

impl PriorityLevels {
    pub fn new(max: u8) -> Self {
        PriorityLevels {
            levels: (0..=max).map(|_| VecDeque::new()).collect(),
            len: 0,
        }
    }

    fn level_of(&self, entry: &Entry) -> usize {
        let max = self.levels.len() - 1;
        usize::from(entry.message.priority()).min(max)
    }

    pub fn push_back(&mut self, entry: Entry) {
        let level = self.level_of(&entry);
        self.levels[level].push_back(entry);
        self.len += 1;
    }

    pub fn requeue(&mut self, entry: Entry) {
        let index = self.level_of(&entry);
        let level = &mut self.levels[index];
        let at = level.partition_point(|e| e.seq < entry.seq);
        level.insert(at, entry);
        self.len += 1;
    }

    pub fn front(&self) -> Option<&Entry> {
        self.levels.iter().rev().find_map(|level| level.front())
    }

    pub fn pop_front(&mut self) -> Option<Entry> {
        let entry = self
            .levels
            .iter_mut()
            .rev()
            .find_map(|level| level.pop_front())?;
        self.len -= 1;
        Some(entry)
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::{Bytes, BytesMut};
    use rmqd_codec::{BasicProperties, ShortStr};

    use super::*;
    use crate::memory::MemoryTracker;
    use crate::message::Message;

    fn entry(seq: u64, priority: Option<u8>) -> Entry {
        let properties = BasicProperties {
            priority,
            ..Default::default()
        };
        let memory = Arc::new(MemoryTracker::new(usize::MAX));
        Entry {
            seq,
            message: Arc::new(Message::new(
                &ShortStr::default(),
                &ShortStr::default(),
                &properties,
                Bytes::new(),
                &memory,
                &mut BytesMut::new(),
            )),
            redelivered: false,
            expires_at: None,
        }
    }

    fn drain(levels: &mut PriorityLevels) -> Vec<u64> {
        std::iter::from_fn(|| levels.pop_front().map(|e| e.seq)).collect()
    }

    #[test]
    fn higher_priority_first_and_fifo_within_a_priority() {
        let mut levels = PriorityLevels::new(10);
        levels.push_back(entry(1, Some(3)));
        levels.push_back(entry(2, Some(6)));
        levels.push_back(entry(3, Some(3)));
        levels.push_back(entry(4, None));
        assert_eq!(drain(&mut levels), vec![2, 1, 3, 4]);
    }

    #[test]
    fn priority_above_the_maximum_counts_as_the_maximum() {
        let mut levels = PriorityLevels::new(2);
        levels.push_back(entry(1, Some(2)));
        levels.push_back(entry(2, Some(200)));
        levels.push_back(entry(3, Some(1)));
        assert_eq!(drain(&mut levels), vec![1, 2, 3]);
    }

    #[test]
    fn requeued_message_returns_to_its_place_in_its_priority() {
        let mut levels = PriorityLevels::new(10);
        for (seq, p) in [(1, Some(1)), (2, Some(5)), (3, Some(1))] {
            levels.push_back(entry(seq, p));
        }
        let taken: Vec<Entry> = (0..3).filter_map(|_| levels.pop_front()).collect();
        levels.push_back(entry(4, Some(9)));
        for e in taken.into_iter().rev() {
            levels.requeue(e);
        }
        assert_eq!(drain(&mut levels), vec![4, 2, 1, 3]);
        assert_eq!(levels.len(), 0);
    }
}
