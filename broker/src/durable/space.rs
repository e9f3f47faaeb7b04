//! Which segments of the message log still matter, so that the others can be deleted
//! (STORAGE.md, *Reclaiming space*).
//!
//! A segment matters while a publish record in it is still held by some durable queue, or while
//! it holds an ack for a message in an older segment that still exists: deleting that ack first
//! would bring the acked message back at the next start. Message ids are handed out in log
//! order, so a message's segment is found from its id and a short table of where each segment's
//! ids begin; nothing is stored per message.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(super) struct SegmentBook {
    /// `(first message id, segment)`, ascending in both.
    ranges: Vec<(u64, u64)>,
    uses: BTreeMap<u64, SegmentUse>,
}

#[derive(Default)]
struct SegmentUse {
    /// Queue references still held by the publish records in this segment.
    live: u64,
    /// Older segments holding messages that acks in this segment cancel.
    acks_into: BTreeSet<u64>,
}

impl SegmentBook {
    /// A publish record for message `id` went into `segment`.
    pub fn note_publish(&mut self, id: u64, segment: u64) {
        if self.ranges.last().is_none_or(|&(_, s)| s != segment) {
            self.ranges.push((id, segment));
        }
    }

    /// `refs` more queues hold message `id`.
    pub fn hold(&mut self, id: u64, refs: u64) {
        if let Some(segment) = self.segment_of(id) {
            self.uses.entry(segment).or_default().live += refs;
        }
    }

    /// An ack record for message `id` went into `ack_segment`.
    pub fn note_ack(&mut self, id: u64, ack_segment: u64) {
        if let Some(segment) = self.segment_of(id)
            && segment != ack_segment
        {
            self.uses
                .entry(ack_segment)
                .or_default()
                .acks_into
                .insert(segment);
        }
    }

    /// One queue let go of message `id`. True if its segment holds nothing live any more.
    pub fn release(&mut self, id: u64) -> bool {
        let Some(segment) = self.segment_of(id) else {
            return false;
        };
        let usage = self.uses.entry(segment).or_default();
        usage.live = usage.live.saturating_sub(1);
        usage.live == 0
    }

    pub fn segment_of(&self, id: u64) -> Option<u64> {
        let after = self.ranges.partition_point(|&(first, _)| first <= id);
        after.checked_sub(1).map(|i| self.ranges[i].1)
    }

    /// The segments of `on_disk` (ascending) that can go, never `current`. Acks only point at
    /// older segments, so one pass in ascending order sees every consequence of a deletion.
    pub fn deletable(&self, on_disk: &[u64], current: u64) -> Vec<u64> {
        let mut kept: BTreeSet<u64> = BTreeSet::new();
        let mut gone = Vec::new();
        for &segment in on_disk {
            let needed = segment == current
                || self.uses.get(&segment).is_some_and(|u| {
                    u.live > 0 || u.acks_into.iter().any(|older| kept.contains(older))
                });
            if needed {
                kept.insert(segment);
            } else {
                gone.push(segment);
            }
        }
        gone
    }

    /// `segment` was deleted.
    pub fn forget_segment(&mut self, segment: u64) {
        self.uses.remove(&segment);
        for usage in self.uses.values_mut() {
            usage.acks_into.remove(&segment);
        }
        // Ids of a deleted segment are never looked up again, but the range of the segment
        // after it must still start where it did.
        if let Some(i) = self.ranges.iter().position(|&(_, s)| s == segment)
            && i + 1 < self.ranges.len()
        {
            self.ranges.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_goes_once_its_messages_are_acked() {
        let mut book = SegmentBook::default();
        book.note_publish(1, 1);
        book.hold(1, 1);
        book.note_publish(2, 2);
        book.hold(2, 1);
        assert_eq!(book.deletable(&[1, 2, 3], 3), Vec::<u64>::new());
        book.note_ack(1, 3);
        assert!(book.release(1));
        assert_eq!(book.deletable(&[1, 2, 3], 3), vec![1]);
    }

    #[test]
    fn an_ack_keeps_its_segment_while_the_acked_message_is_on_disk() {
        let mut book = SegmentBook::default();
        // Message 1 in segment 1 goes to two queues; one acks in segment 2, the other holds it.
        book.note_publish(1, 1);
        book.hold(1, 2);
        book.note_ack(1, 2);
        book.release(1);
        book.note_publish(2, 3);
        book.hold(2, 1);
        // Segment 2 holds nothing live, but its ack cancels a message segment 1 still has.
        assert_eq!(book.deletable(&[1, 2, 3, 4], 4), Vec::<u64>::new());
        book.note_ack(1, 4);
        book.release(1);
        assert_eq!(book.deletable(&[1, 2, 3, 4, 5], 5), vec![1, 2, 4]);
    }

    #[test]
    fn ids_map_to_segments_after_deletions() {
        let mut book = SegmentBook::default();
        for (id, segment) in [(1, 1), (5, 2), (9, 3)] {
            book.note_publish(id, segment);
        }
        book.hold(6, 1);
        book.forget_segment(1);
        book.forget_segment(3);
        assert!(book.release(7));
        assert_eq!(book.segment_of(7), Some(2));
        assert_eq!(book.segment_of(12), Some(3));
    }
}
