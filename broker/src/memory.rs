//! The memory high watermark: bytes held by live messages, and the alarm raised above a limit.
//! While the alarm is on, connections that publish are blocked (connection.blocked, and their
//! sockets are no longer read) so that publishers cannot outrun consumers without bound.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

type AlarmListener = Box<dyn Fn() + Send + Sync>;

pub struct MemoryTracker {
    used: AtomicUsize,
    high_watermark: usize,
    alarm: AtomicBool,
    /// Called whenever the alarm flips (the broker tells every connection).
    on_change: Mutex<Option<AlarmListener>>,
}

impl MemoryTracker {
    pub fn new(high_watermark: usize) -> Self {
        MemoryTracker {
            used: AtomicUsize::new(0),
            high_watermark,
            alarm: AtomicBool::new(false),
            on_change: Mutex::new(None),
        }
    }

    pub(crate) fn set_listener(&self, listener: AlarmListener) {
        *self.on_change.lock() = Some(listener);
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn high_watermark(&self) -> usize {
        self.high_watermark
    }

    pub fn alarm(&self) -> bool {
        self.alarm.load(Ordering::Acquire)
    }

    pub(crate) fn add(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
        self.reconcile();
    }

    pub(crate) fn sub(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        self.reconcile();
    }

    /// Brings the alarm in line with usage. Loops because usage may move between the check and
    /// the flip on another thread; whoever flips last re-checks, so the alarm never stays on
    /// below the watermark (or off above it).
    fn reconcile(&self) {
        loop {
            let on = self.used.load(Ordering::Acquire) > self.high_watermark;
            if self.alarm() == on {
                return;
            }
            self.flip(on);
        }
    }

    fn flip(&self, on: bool) {
        if self
            .alarm
            .compare_exchange(!on, on, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            if on {
                tracing::warn!(
                    used = self.used(),
                    high_watermark = self.high_watermark,
                    "memory alarm set: publishers are blocked"
                );
            } else {
                tracing::info!(used = self.used(), "memory alarm cleared");
            }
            if let Some(listener) = &*self.on_change.lock() {
                listener();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn alarm_follows_usage_across_the_watermark() {
        let tracker = MemoryTracker::new(100);
        tracker.add(100);
        assert!(!tracker.alarm(), "at the watermark is not above it");
        tracker.add(1);
        assert!(tracker.alarm());
        tracker.sub(1);
        assert!(!tracker.alarm());
    }

    #[test]
    fn racing_adds_and_subs_leave_the_alarm_matching_usage() {
        let tracker = Arc::new(MemoryTracker::new(1_000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let tracker = Arc::clone(&tracker);
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        tracker.add(700);
                        tracker.sub(700);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(tracker.used(), 0);
        assert!(!tracker.alarm());
    }
}
