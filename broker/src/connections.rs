//! The registry of live connections: how alarms, vhost deletion and operators reach them, and
//! what `rabbitmqctl list_connections` and `list_channels` show of them.
//!
//! What a listing shows is published by the connections themselves, never gathered from them:
//! the handshake writes its results once, and each channel stores its counts into atomics at
//! the end of every batch of frames or deliveries. Nothing on the path of a message takes a
//! lock for this.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rmqd_codec::{FieldTable, ShortStr, reply_code};

use crate::connection::ConnectionId;
use crate::outbox::{Event, Outbox};

/// A connection's state as `list_connections` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ConnectionState {
    Starting,
    Tuning,
    Opening,
    Running,
    /// Its reading is paused: it published while the memory alarm was on.
    Blocked,
    Closing,
    Closed,
}

impl ConnectionState {
    const ALL: [ConnectionState; 7] = [
        ConnectionState::Starting,
        ConnectionState::Tuning,
        ConnectionState::Opening,
        ConnectionState::Running,
        ConnectionState::Blocked,
        ConnectionState::Closing,
        ConnectionState::Closed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ConnectionState::Starting => "starting",
            ConnectionState::Tuning => "tuning",
            ConnectionState::Opening => "opening",
            ConnectionState::Running => "running",
            ConnectionState::Blocked => "blocked",
            ConnectionState::Closing => "closing",
            ConnectionState::Closed => "closed",
        }
    }
}

/// What the handshake settled, written once per step.
#[derive(Debug, Clone, Default)]
pub(crate) struct Handshake {
    pub user: String,
    pub auth_mechanism: String,
    pub client_properties: FieldTable,
    pub frame_max: u32,
    pub channel_max: u16,
    /// The negotiated heartbeat, in seconds.
    pub heartbeat: u16,
    /// Set once connection.open succeeds.
    pub vhost: Option<ShortStr>,
}

/// A channel's counts as `list_channels` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ChannelCounts {
    pub consumers: u32,
    pub unacked: u32,
    /// basic.qos global=false: the prefetch of consumers created from now on.
    pub prefetch: u16,
    /// basic.qos global=true: the prefetch shared by the channel's consumers.
    pub global_prefetch: u16,
    pub confirm: bool,
    pub transactional: bool,
}

/// Where a channel publishes its [`ChannelCounts`]; each field is stored on its own, so a
/// reader may see a batch's counts half published, never torn values.
#[derive(Debug, Default)]
pub(crate) struct ChannelStats {
    consumers: AtomicU32,
    unacked: AtomicU32,
    prefetch: AtomicU16,
    global_prefetch: AtomicU16,
    confirm: AtomicBool,
    transactional: AtomicBool,
}

impl ChannelStats {
    pub fn store(&self, counts: ChannelCounts) {
        self.consumers.store(counts.consumers, Ordering::Relaxed);
        self.unacked.store(counts.unacked, Ordering::Relaxed);
        self.prefetch.store(counts.prefetch, Ordering::Relaxed);
        self.global_prefetch
            .store(counts.global_prefetch, Ordering::Relaxed);
        self.confirm.store(counts.confirm, Ordering::Relaxed);
        self.transactional
            .store(counts.transactional, Ordering::Relaxed);
    }

    pub fn load(&self) -> ChannelCounts {
        ChannelCounts {
            consumers: self.consumers.load(Ordering::Relaxed),
            unacked: self.unacked.load(Ordering::Relaxed),
            prefetch: self.prefetch.load(Ordering::Relaxed),
            global_prefetch: self.global_prefetch.load(Ordering::Relaxed),
            confirm: self.confirm.load(Ordering::Relaxed),
            transactional: self.transactional.load(Ordering::Relaxed),
        }
    }
}

/// One live connection as listings see it.
pub(crate) struct ConnectionInfo {
    pub peer: SocketAddr,
    /// Our end of the socket.
    pub local: SocketAddr,
    pub connected_at: SystemTime,
    state: AtomicU8,
    handshake: Mutex<Handshake>,
    channels: Mutex<BTreeMap<u16, Arc<ChannelStats>>>,
}

impl ConnectionInfo {
    fn new(peer: SocketAddr, local: SocketAddr) -> ConnectionInfo {
        ConnectionInfo {
            peer,
            local,
            connected_at: SystemTime::now(),
            state: AtomicU8::new(ConnectionState::Starting as u8),
            handshake: Mutex::new(Handshake::default()),
            channels: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn state(&self) -> ConnectionState {
        let raw = self.state.load(Ordering::Relaxed);
        ConnectionState::ALL
            .into_iter()
            .find(|s| *s as u8 == raw)
            .unwrap_or(ConnectionState::Closed)
    }

    pub fn set_state(&self, state: ConnectionState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    pub fn handshake(&self) -> Handshake {
        self.handshake.lock().clone()
    }

    pub fn update_handshake(&self, change: impl FnOnce(&mut Handshake)) {
        change(&mut self.handshake.lock());
    }

    pub fn vhost(&self) -> Option<ShortStr> {
        self.handshake.lock().vhost.clone()
    }

    pub fn channel_opened(&self, channel: u16, stats: Arc<ChannelStats>) {
        self.channels.lock().insert(channel, stats);
    }

    pub fn channel_closed(&self, channel: u16) {
        self.channels.lock().remove(&channel);
    }

    pub fn all_channels_closed(&self) {
        self.channels.lock().clear();
    }

    pub fn channel_count(&self) -> usize {
        self.channels.lock().len()
    }

    /// Every open channel's number and counts, by number.
    pub fn channels(&self) -> Vec<(u16, ChannelCounts)> {
        self.channels
            .lock()
            .iter()
            .map(|(number, stats)| (*number, stats.load()))
            .collect()
    }
}

/// A live connection as the broker reaches it.
struct Registered {
    outbox: Arc<Outbox>,
    info: Arc<ConnectionInfo>,
}

pub(crate) struct Connections {
    live: Mutex<HashMap<ConnectionId, Registered>>,
    next: AtomicU64,
    /// When this broker started, in seconds since the epoch: it tells the connection ids of
    /// this run from those of an earlier one, which counted from 1 as well.
    creation: u64,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            live: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            creation: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

impl Connections {
    pub fn creation(&self) -> u64 {
        self.creation
    }

    pub fn register(
        &self,
        outbox: Arc<Outbox>,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> (ConnectionId, Arc<ConnectionInfo>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let info = Arc::new(ConnectionInfo::new(peer, local));
        self.live.lock().insert(
            id,
            Registered {
                outbox,
                info: Arc::clone(&info),
            },
        );
        (id, info)
    }

    pub fn unregister(&self, id: ConnectionId) {
        self.live.lock().remove(&id);
    }

    pub fn count(&self) -> usize {
        self.live.lock().len()
    }

    /// Every live connection, oldest first.
    pub fn list(&self) -> Vec<(ConnectionId, Arc<ConnectionInfo>)> {
        let mut all: Vec<_> = self
            .live
            .lock()
            .iter()
            .map(|(id, c)| (*id, Arc::clone(&c.info)))
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    /// Closes the chosen connections with 320 CONNECTION_FORCED and `reason` as the text's
    /// detail; returns how many were chosen.
    pub fn force_close(
        &self,
        reason: &str,
        chosen: impl Fn(ConnectionId, &ConnectionInfo) -> bool,
    ) -> usize {
        let text = format!("CONNECTION_FORCED - {reason}");
        self.broadcast_to(chosen, || Event::ForceClose {
            code: reply_code::CONNECTION_FORCED,
            text: text.clone(),
        })
    }

    pub fn broadcast(&self, event: impl Fn() -> Event) {
        self.broadcast_to(|_, _| true, event);
    }

    fn broadcast_to(
        &self,
        chosen: impl Fn(ConnectionId, &ConnectionInfo) -> bool,
        event: impl Fn() -> Event,
    ) -> usize {
        // Pushed outside the registry's lock: a push wakes the connection's task.
        let outboxes: Vec<Arc<Outbox>> = self
            .live
            .lock()
            .iter()
            .filter(|(id, c)| chosen(**id, &c.info))
            .map(|(_, c)| Arc::clone(&c.outbox))
            .collect();
        for outbox in &outboxes {
            outbox.push(event());
        }
        outboxes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn force_close_reaches_only_the_chosen_connections() {
        let registry = Connections::default();
        let (a_box, b_box) = (Outbox::new(), Outbox::new());
        let (a, _) = registry.register(
            Arc::clone(&a_box),
            addr("127.0.0.1:1"),
            addr("127.0.0.1:5672"),
        );
        registry.register(
            Arc::clone(&b_box),
            addr("127.0.0.1:2"),
            addr("127.0.0.1:5672"),
        );
        assert_eq!(registry.force_close("bye", |id, _| id == a), 1);
        let mut events = std::collections::VecDeque::new();
        a_box.drain(&mut events);
        assert!(matches!(
            events.pop_front(),
            Some(Event::ForceClose { code: 320, text }) if text == "CONNECTION_FORCED - bye"
        ));
        b_box.drain(&mut events);
        assert!(events.is_empty());
    }

    #[test]
    fn channel_counts_read_back_as_stored() {
        let stats = ChannelStats::default();
        let counts = ChannelCounts {
            consumers: 2,
            unacked: 7,
            prefetch: 10,
            global_prefetch: 100,
            confirm: true,
            transactional: false,
        };
        stats.store(counts);
        assert_eq!(stats.load(), counts);
    }

    #[test]
    fn listing_is_oldest_first_and_forgets_unregistered() {
        let registry = Connections::default();
        // Enough connections that a listing in hash order would not come out sorted by luck.
        let mut ids: Vec<_> = (1..=20)
            .map(|port| {
                registry
                    .register(
                        Outbox::new(),
                        addr(&format!("127.0.0.1:{port}")),
                        addr("127.0.0.1:5672"),
                    )
                    .0
            })
            .collect();
        for gone in [ids.remove(13), ids.remove(7), ids.remove(1)] {
            registry.unregister(gone);
        }
        let listed: Vec<_> = registry.list().into_iter().map(|(id, _)| id).collect();
        assert_eq!(listed, ids);
    }
}
