//! The memory high watermark: bytes held by live messages, and the alarm raised above a limit.
//! While the alarm is on, connections that publish are blocked (connection.blocked, and their
//! sockets are no longer read) so that publishers cannot outrun consumers without bound.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

type AlarmListener = Box<dyn Fn(bool) + Send + Sync>;

pub struct MemoryTracker {
    used: AtomicUsize,
    high_watermark: usize,
    alarm: AtomicBool,
    /// Called with the new alarm state whenever it flips (the broker tells every connection).
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
        let used = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if used > self.high_watermark && !self.alarm() {
            self.flip(true);
        }
    }

    pub(crate) fn sub(&self, bytes: usize) {
        let used = self.used.fetch_sub(bytes, Ordering::Relaxed) - bytes;
        if used <= self.high_watermark && self.alarm() {
            self.flip(false);
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
                listener(on);
            }
        }
    }
}
