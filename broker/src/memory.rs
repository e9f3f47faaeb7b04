//! The memory high watermark: bytes held by live messages, and the alarm raised above a limit.
//! While the alarm is on, connections that publish are blocked (connection.blocked, and their
//! sockets are no longer read) so that publishers cannot outrun consumers without bound.
//! The disk alarm ([`crate::disk`]) blocks them the same way and is kept here too, so that a
//! connection consults one alarm.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

type AlarmListener = Box<dyn Fn() + Send + Sync>;

pub struct MemoryTracker {
    used: AtomicUsize,
    high_watermark: usize,
    alarm: AtomicBool,
    /// Free disk space is below `disk_free_limit`.
    disk_alarm: AtomicBool,
    /// Called whenever either alarm flips (the broker tells every connection).
    on_change: Mutex<Option<AlarmListener>>,
}

impl MemoryTracker {
    pub fn new(high_watermark: usize) -> Self {
        MemoryTracker {
            used: AtomicUsize::new(0),
            high_watermark,
            alarm: AtomicBool::new(false),
            disk_alarm: AtomicBool::new(false),
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

    /// Whether publishers are blocked: the memory alarm or the disk alarm is on.
    pub fn alarm(&self) -> bool {
        self.memory_alarm() || self.disk_alarm()
    }

    pub fn memory_alarm(&self) -> bool {
        self.alarm.load(Ordering::Acquire)
    }

    pub fn disk_alarm(&self) -> bool {
        self.disk_alarm.load(Ordering::Acquire)
    }

    /// The reason connection.blocked gives, in RabbitMQ's words.
    pub fn blocked_reason(&self) -> &'static str {
        match (self.memory_alarm(), self.disk_alarm()) {
            (true, true) => "low on memory & disk",
            (false, true) => "low on disk",
            _ => "low on memory",
        }
    }

    pub(crate) fn set_disk_alarm(&self, on: bool) {
        if self.disk_alarm.swap(on, Ordering::AcqRel) != on {
            self.notify();
        }
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
            if self.memory_alarm() == on {
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
            self.notify();
        }
    }

    fn notify(&self) {
        if let Some(listener) = &*self.on_change.lock() {
            listener();
        }
    }
}

/// Bytes of RAM on this machine (2 GiB if that cannot be read).
pub fn physical_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(2 << 30)
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
    fn either_alarm_blocks_and_the_reason_names_both() {
        let tracker = MemoryTracker::new(100);
        let flips = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&flips);
        tracker.set_listener(Box::new(move || {
            counted.fetch_add(1, Ordering::Relaxed);
        }));
        tracker.set_disk_alarm(true);
        assert!(tracker.alarm());
        assert_eq!(tracker.blocked_reason(), "low on disk");
        tracker.set_disk_alarm(true);
        assert_eq!(flips.load(Ordering::Relaxed), 1, "no news, no notice");
        tracker.add(101);
        assert_eq!(tracker.blocked_reason(), "low on memory & disk");
        tracker.set_disk_alarm(false);
        assert!(tracker.alarm(), "memory still blocks");
        assert_eq!(tracker.blocked_reason(), "low on memory");
        tracker.sub(101);
        assert!(!tracker.alarm());
        assert_eq!(flips.load(Ordering::Relaxed), 4);
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
