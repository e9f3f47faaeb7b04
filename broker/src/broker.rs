//! The broker: vhosts, users, limits, and the registry of live connections that alarms and
//! operators reach them through (`connections.rs`). Shared by every connection as `Arc<Broker>`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rmqd_codec::{DEFAULT_FRAME_MAX, ShortStr};
use tracing::info;

use crate::auth::Users;
use crate::connections::Connections;
use crate::definitions::Kept;
use crate::durable::{self, DiskStore, DurableAccess, StoreLimits};
use crate::memory::MemoryTracker;
use crate::metrics::Metrics;
use crate::outbox::Event;
use crate::store::StoreError;
use crate::vhost::{Vhost, notify_orphans};

/// Limits and defaults, RabbitMQ's unless noted.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub frame_max: u32,
    pub channel_max: u16,
    /// Seconds proposed in connection.tune; 0 disables.
    pub heartbeat: u16,
    /// RabbitMQ 3.x allowed 128 MiB messages; 4.x lowered its default to 16 MiB. We keep 128 MiB.
    pub max_message_size: usize,
    pub handshake_timeout: Duration,
    /// Bytes of message data above which publishers are blocked.
    pub memory_high_watermark: usize,
    pub cluster_name: String,
    /// Size at which the message log starts a new segment file; space is reclaimed a whole
    /// segment at a time.
    pub message_segment_size: u64,
    /// Bytes of ready messages a durable queue keeps in memory; beyond them its persistent
    /// messages wait on disk and are read back as the queue drains.
    pub queue_memory_limit: usize,
    /// How long a delivery may wait for its ack before the channel is closed with 406
    /// (RabbitMQ's `consumer_timeout`, 30 minutes); `None` waits forever.
    pub consumer_timeout: Option<Duration>,
    /// Free bytes on the data dir's disk below which publishers are blocked (RabbitMQ's
    /// `disk_free_limit`, 50 MB).
    pub disk_free_limit: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            frame_max: DEFAULT_FRAME_MAX,
            channel_max: 2047,
            heartbeat: 60,
            max_message_size: 128 << 20,
            handshake_timeout: Duration::from_secs(10),
            memory_high_watermark: default_high_watermark(),
            cluster_name: "rmqd".to_string(),
            message_segment_size: 64 << 20,
            queue_memory_limit: 64 << 20,
            consumer_timeout: Some(Duration::from_secs(30 * 60)),
            disk_free_limit: 50_000_000,
        }
    }
}

/// 40% of physical memory, as RabbitMQ's `vm_memory_high_watermark` default.
fn default_high_watermark() -> usize {
    usize::try_from(crate::memory::physical_memory() / 5 * 2).unwrap_or(usize::MAX)
}

pub struct Broker {
    pub config: BrokerConfig,
    pub users: Users,
    pub memory: Arc<MemoryTracker>,
    pub metrics: Metrics,
    /// The data dir's store; `None` keeps everything in memory.
    pub(crate) store: Option<Arc<DiskStore>>,
    vhosts: RwLock<HashMap<ShortStr, Arc<Vhost>>>,
    pub(crate) connections: Connections,
    /// The default user and vhost have been created (on this data dir's first start).
    initialised: AtomicBool,
    /// Definitions kept for export though not acted on (vhost metadata, parameters...).
    kept: Mutex<Kept>,
}

impl Broker {
    /// A broker that keeps everything in memory.
    pub fn new(config: BrokerConfig) -> Arc<Broker> {
        let memory = Arc::new(MemoryTracker::new(config.memory_high_watermark));
        Self::with_store(config, memory, None)
    }

    /// A broker whose durable queues, exchanges, bindings and persistent messages live under
    /// `data_dir`; whatever is there from a previous run is recovered first.
    pub fn open(config: BrokerConfig, data_dir: &Path) -> Result<Arc<Broker>, StoreError> {
        let started = Instant::now();
        info!(dir = %data_dir.display(), "opening the data dir");
        let memory = Arc::new(MemoryTracker::new(config.memory_high_watermark));
        let limits = StoreLimits {
            segment_size: config.message_segment_size,
            queue_memory_limit: config.queue_memory_limit,
            max_message_size: config.max_message_size,
        };
        let (store, recovered) = DiskStore::open(data_dir, limits, Arc::clone(&memory))?;
        let store = Arc::new(store);
        let broker = Self::with_store(config, memory, Some(Arc::clone(&store)));
        let records = recovered.records();
        let replayed = recovered.meta_records();
        let (queues, messages) = durable::rebuild(&broker, &store, recovered);
        store.reclaim_after_recovery();
        let live: Vec<_> = broker
            .vhosts()
            .iter()
            .map(|v| (v.name.clone(), v.durable_topology()))
            .collect();
        let access = DurableAccess {
            users: broker.users.list(),
            initialised: broker.is_initialised(),
            kept: broker.kept(),
        };
        store.compact_meta(replayed, &live, &access)?;
        store.start_recording();
        info!(
            queues,
            messages,
            records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "recovered {queues} durable queues holding {messages} messages"
        );
        Ok(broker)
    }

    fn with_store(
        config: BrokerConfig,
        memory: Arc<MemoryTracker>,
        store: Option<Arc<DiskStore>>,
    ) -> Arc<Broker> {
        let broker = Arc::new(Broker {
            config,
            users: Users::default(),
            memory: Arc::clone(&memory),
            metrics: Metrics::default(),
            store,
            vhosts: RwLock::new(HashMap::new()),
            connections: Connections::default(),
            initialised: AtomicBool::new(false),
            kept: Mutex::new(Kept::default()),
        });
        if let Some(store) = &broker.store {
            let store = Arc::clone(store);
            broker
                .users
                .set_journal(Box::new(move |change| store.user_changed(change)));
        }
        let weak: Weak<Broker> = Arc::downgrade(&broker);
        memory.set_listener(Box::new(move || {
            if let Some(broker) = weak.upgrade() {
                broker.connections.broadcast(|| Event::MemoryAlarmChanged);
            }
        }));
        broker
    }

    /// Whether the default user and vhost were created before: always false in memory, and
    /// true on a data dir after its first start.
    pub fn is_initialised(&self) -> bool {
        self.initialised.load(Ordering::Acquire)
    }

    /// Notes (on disk too) that the default user and vhost have been created, so that later
    /// starts leave them as the operator has since made them.
    pub fn mark_initialised(&self) {
        self.initialised.store(true, Ordering::Release);
        if let Some(store) = &self.store {
            store.initialised();
        }
    }

    /// Changes the kept definitions, on disk too if they changed.
    pub(crate) fn change_kept(&self, change: impl FnOnce(&mut Kept)) {
        let mut kept = self.kept.lock();
        let before = kept.clone();
        change(&mut kept);
        if *kept != before
            && let Some(store) = &self.store
        {
            store.kept_changed(&kept);
        }
    }

    pub(crate) fn kept(&self) -> Kept {
        self.kept.lock().clone()
    }

    /// Writes and fsyncs everything recorded so far (a no-op in memory); for shutdown.
    pub fn sync_to_disk(&self) -> Result<(), StoreError> {
        match &self.store {
            Some(store) => store.sync(),
            None => Ok(()),
        }
    }

    pub fn add_vhost(&self, name: &str) -> Arc<Vhost> {
        let name = ShortStr::truncating(name);
        let mut vhosts = self.vhosts.write();
        if let Some(vhost) = vhosts.get(&name) {
            return Arc::clone(vhost);
        }
        if let Some(store) = &self.store {
            store.vhost_added(&name);
        }
        let vhost = Vhost::new(name.clone(), self.store.clone());
        vhosts.insert(name, Arc::clone(&vhost));
        vhost
    }

    /// Deletes a vhost as `rabbitmqctl delete_vhost` does: its connections are closed with
    /// 320 CONNECTION_FORCED, its queues (and their messages) and exchanges go, on disk too.
    /// Returns false if there was no such vhost.
    pub fn delete_vhost(&self, name: &str) -> bool {
        let name = ShortStr::truncating(name);
        let Some(vhost) = self.vhosts.write().remove(&name) else {
            return false;
        };
        if let Some(store) = &self.store {
            // Before the queues' own deletion records, so that a crash in between still
            // leaves the vhost gone on restart.
            store.vhost_deleted(&name);
        }
        let reason = format!("vhost '{}' is deleted", name.to_string_lossy());
        self.connections
            .force_close(&reason, |_, c| c.vhost().as_ref() == Some(&name));
        vhost.delete_everything();
        let name = name.to_string_lossy();
        self.users.forget_vhost(&name);
        self.change_kept(|kept| kept.forget_vhost(&name));
        info!(vhost = %name, "vhost deleted");
        true
    }

    /// Drops a vhost from the broker without recording anything (replaying a deletion).
    pub(crate) fn forget_vhost(&self, vhost: &Arc<Vhost>) {
        self.vhosts.write().remove(&vhost.name);
        vhost.delete_everything();
    }

    pub fn vhost(&self, name: &[u8]) -> Option<Arc<Vhost>> {
        self.vhosts.read().get(name).cloned()
    }

    pub fn vhosts(&self) -> Vec<Arc<Vhost>> {
        self.vhosts.read().values().cloned().collect()
    }

    /// Deletes expired queues and messages; run it periodically.
    pub fn expire(&self, now: Instant) {
        for vhost in self.vhosts() {
            notify_orphans(vhost.expire(now));
        }
    }

    /// Closes every connection with 320 CONNECTION_FORCED, as RabbitMQ does on shutdown.
    pub fn close_all(&self, reason: &str) {
        self.connections.force_close(reason, |_, _| true);
    }

    pub fn connection_count(&self) -> usize {
        self.connections.count()
    }
}
