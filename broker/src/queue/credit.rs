//! Prefetch accounting shared between a channel (which releases credit on ack) and the queues
//! its consumers read from (which take credit per delivery). Atomic, so a queue can check it
//! without the channel's state.

use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug)]
pub(crate) struct Credit {
    /// 0 means unlimited, as in basic.qos.
    limit: AtomicU32,
    in_flight: AtomicU32,
}

impl Credit {
    pub fn new(limit: u16) -> Self {
        Credit {
            limit: AtomicU32::new(u32::from(limit)),
            in_flight: AtomicU32::new(0),
        }
    }

    pub fn set_limit(&self, limit: u16) {
        self.limit.store(u32::from(limit), Ordering::Release);
    }

    /// The limit basic.qos set; 0 is none.
    pub fn limit(&self) -> u16 {
        u16::try_from(self.limit.load(Ordering::Acquire)).unwrap_or(u16::MAX)
    }

    pub fn is_limited(&self) -> bool {
        self.limit.load(Ordering::Acquire) != 0
    }

    /// Takes one unit if under the limit.
    pub fn try_acquire(&self) -> bool {
        let limit = self.limit.load(Ordering::Acquire);
        if limit == 0 {
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            return true;
        }
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    pub fn release(&self, n: u32) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_sub(n))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_caps_acquisitions_until_release() {
        let credit = Credit::new(2);
        assert!(credit.try_acquire());
        assert!(credit.try_acquire());
        assert!(!credit.try_acquire());
        credit.release(1);
        assert!(credit.try_acquire());
    }

    #[test]
    fn zero_is_unlimited() {
        let credit = Credit::new(0);
        assert!((0..10_000).all(|_| credit.try_acquire()));
    }
}
