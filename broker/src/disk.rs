//! The disk alarm, RabbitMQ's `disk_free_limit`: while the filesystem holding the data dir has
//! less free space than the limit, publishers are blocked exactly as under the memory alarm
//! (connection.blocked "low on disk"). Free space is checked periodically, more often the
//! closer it is to the limit. A broker without a data dir has no disk alarm.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::memory::MemoryTracker;

/// Checks never come closer together than this (RabbitMQ's `disk_monitor_min_interval`)...
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// ...nor further apart than this (its `disk_monitor_max_interval`).
const MAX_INTERVAL: Duration = Duration::from_secs(10);
/// How often free space is checked while the alarm is on, so that freeing space unblocks
/// publishers promptly.
const ALARMED_INTERVAL: Duration = Duration::from_secs(1);
/// The fastest a disk is assumed to fill, in bytes per second (RabbitMQ assumes 250 MB/s):
/// the next check comes before such a writer could use up half the headroom.
const FAST_FILL_RATE: u64 = 250_000_000;

/// Bytes an unprivileged process may still write on the filesystem holding `dir`.
pub fn free_space(dir: &Path) -> io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Checks `dir` now, then keeps the disk alarm on `memory` in line with free space until
/// dropped. The first check is made before this returns, so that a broker starting on a full
/// disk blocks its very first publisher.
pub(crate) fn watch(
    dir: PathBuf,
    limit: u64,
    memory: Arc<MemoryTracker>,
) -> impl Future<Output = ()> + Send {
    let mut unreadable = false;
    let mut wait = check(&dir, limit, &memory, &mut unreadable);
    async move {
        loop {
            tokio::time::sleep(wait).await;
            wait = check(&dir, limit, &memory, &mut unreadable);
        }
    }
}

/// One check; returns when to check next.
fn check(dir: &Path, limit: u64, memory: &MemoryTracker, unreadable: &mut bool) -> Duration {
    let free = match free_space(dir) {
        Ok(free) => free,
        Err(err) => {
            // The alarm stays as it was: a transient failure neither blocks nor frees anyone.
            if !*unreadable {
                warn!(dir = %dir.display(), "cannot read the free disk space: {err}");
                *unreadable = true;
            }
            return MAX_INTERVAL;
        }
    };
    *unreadable = false;
    let low = free < limit;
    if low != memory.disk_alarm() {
        if low {
            warn!(
                free,
                limit, "free disk space is insufficient: disk alarm set, publishers are blocked"
            );
        } else {
            info!(
                free,
                limit, "free disk space is sufficient: disk alarm cleared"
            );
        }
        memory.set_disk_alarm(low);
    }
    next_check(free, limit)
}

fn next_check(free: u64, limit: u64) -> Duration {
    if free < limit {
        return ALARMED_INTERVAL;
    }
    let headroom_ms = (free - limit) / 2 / (FAST_FILL_RATE / 1000);
    Duration::from_millis(headroom_ms).clamp(MIN_INTERVAL, MAX_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_come_sooner_as_free_space_nears_the_limit() {
        let limit = 50_000_000;
        assert_eq!(next_check(limit, limit), MIN_INTERVAL);
        assert_eq!(
            next_check(limit + 100_000_000, limit),
            Duration::from_millis(200)
        );
        assert_eq!(next_check(u64::MAX, limit), MAX_INTERVAL);
        assert_eq!(next_check(limit - 1, limit), ALARMED_INTERVAL);
    }

    #[test]
    fn a_temp_dir_has_some_free_space() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_space(dir.path()).unwrap() > 0);
        assert!(free_space(&dir.path().join("missing")).is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_first_check_sets_the_alarm_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Arc::new(MemoryTracker::new(usize::MAX));
        drop(watch(
            dir.path().to_path_buf(),
            u64::MAX,
            Arc::clone(&memory),
        ));
        assert!(memory.disk_alarm(), "no disk has u64::MAX bytes free");
        assert_eq!(memory.blocked_reason(), "low on disk");
        drop(watch(dir.path().to_path_buf(), 0, Arc::clone(&memory)));
        assert!(!memory.disk_alarm(), "cleared once there is room");
    }

    #[test]
    fn an_unreadable_dir_leaves_the_alarm_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let memory = MemoryTracker::new(usize::MAX);
        memory.set_disk_alarm(true);
        let mut unreadable = false;
        assert_eq!(check(&missing, 0, &memory, &mut unreadable), MAX_INTERVAL);
        assert!(memory.disk_alarm());
        assert!(unreadable, "warned once");
        check(dir.path(), 0, &memory, &mut unreadable);
        assert!(
            !memory.disk_alarm(),
            "readable again, and above a zero limit"
        );
        assert!(!unreadable);
    }
}
