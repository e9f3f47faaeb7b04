//! A published message. One `Arc<Message>` is shared by every queue it is routed to, so a
//! fanout to N queues holds one body, not N.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rmqd_codec::{BasicProperties, ShortStr};

use crate::memory::MemoryTracker;

#[derive(Debug)]
pub struct Message {
    pub exchange: ShortStr,
    pub routing_key: ShortStr,
    pub properties: BasicProperties,
    pub body: Bytes,
    /// The `expiration` property, parsed once for every queue the message reaches.
    pub ttl: Option<Duration>,
    /// Counts this message's bytes against the memory high watermark for as long as it lives.
    _charge: MemoryCharge,
}

impl Message {
    pub fn new(
        exchange: ShortStr,
        routing_key: ShortStr,
        properties: BasicProperties,
        body: Bytes,
        memory: &Arc<MemoryTracker>,
    ) -> Self {
        let bytes = body.len() + exchange.len() + routing_key.len() + MESSAGE_OVERHEAD;
        let ttl = properties
            .expiration
            .as_ref()
            .and_then(|e| e.as_str()?.parse::<u64>().ok())
            .map(Duration::from_millis);
        Message {
            ttl,
            exchange,
            routing_key,
            properties,
            body,
            _charge: MemoryCharge::new(memory, bytes),
        }
    }
}

/// What a queued message costs beyond its body and names: the struct, its Arc and properties.
const MESSAGE_OVERHEAD: usize = 256;

struct MemoryCharge {
    tracker: Arc<MemoryTracker>,
    bytes: usize,
}

impl MemoryCharge {
    fn new(tracker: &Arc<MemoryTracker>, bytes: usize) -> Self {
        tracker.add(bytes);
        MemoryCharge {
            tracker: Arc::clone(tracker),
            bytes,
        }
    }
}

impl std::fmt::Debug for MemoryCharge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes", self.bytes)
    }
}

impl Drop for MemoryCharge {
    fn drop(&mut self) {
        self.tracker.sub(self.bytes);
    }
}
