//! A published message. One `Arc<Message>` is shared by every queue it is routed to, so a
//! fanout to N queues holds one body, not N.
//!
//! A queued message costs what it holds and little more: the exchange, routing key and encoded
//! properties (and the body, when small) sit in one exact-size allocation, copied out of the
//! read buffer so that a long backlog does not pin whole read buffers. Deliveries copy the
//! encoded properties to the wire instead of re-encoding them. Only the few properties the
//! broker acts on (priority, TTL, persistence) are kept decoded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rmqd_codec::{BasicProperties, ShortStr, decode_properties, encode_properties};

use crate::memory::MemoryTracker;

/// Bodies up to this size are copied next to the names; larger ones stay the slice they arrived
/// as, since copying them would cost more than the buffer they pin.
const INLINE_BODY_MAX: usize = 4096;

/// Delivery mode 2: the publisher asks for the message to survive a restart.
const PERSISTENT: u8 = 2;

/// What a queued message costs beyond its bytes: this struct, its `Arc`, allocator overhead and
/// the queue entry that points at it.
const MESSAGE_OVERHEAD: usize = 160;

pub struct Message {
    /// `[exchange len][exchange][routing key len][routing key][properties][inline body]`.
    packed: Box<[u8]>,
    /// Where the encoded properties end (and an inline body starts).
    properties_end: u32,
    /// A body above [`INLINE_BODY_MAX`]. Boxed so that the common small message does not carry
    /// an empty `Bytes` (queued messages are counted in millions; every word shows).
    large_body: Option<Box<Bytes>>,
    /// The `expiration` property in milliseconds, parsed once for every queue the message
    /// reaches; [`NO_TTL`] when absent (a plain integer keeps the struct a word smaller).
    ttl_ms: u64,
    priority: u8,
    persistent: bool,
    /// The id the durable store knows this message by; 0 while it is not stored.
    stored_id: AtomicU64,
    /// Counts this message's bytes against the memory high watermark for as long as it lives.
    memory: Arc<MemoryTracker>,
}

impl Message {
    /// Packs a publish. `scratch` is a reusable buffer for encoding the properties.
    pub fn new(
        exchange: &ShortStr,
        routing_key: &ShortStr,
        properties: &BasicProperties,
        body: Bytes,
        memory: &Arc<MemoryTracker>,
        scratch: &mut BytesMut,
    ) -> Self {
        scratch.clear();
        scratch.extend_from_slice(&[exchange.len() as u8]);
        scratch.extend_from_slice(exchange.as_bytes());
        scratch.extend_from_slice(&[routing_key.len() as u8]);
        scratch.extend_from_slice(routing_key.as_bytes());
        encode_properties(properties, scratch);
        let properties_end = scratch.len() as u32;
        let inline = body.len() <= INLINE_BODY_MAX;
        let mut packed = Vec::with_capacity(scratch.len() + if inline { body.len() } else { 0 });
        packed.extend_from_slice(scratch);
        let large_body = if inline {
            packed.extend_from_slice(&body);
            None
        } else {
            Some(Box::new(body))
        };
        Self::assemble(
            packed.into_boxed_slice(),
            properties_end,
            large_body,
            properties,
            0,
            memory,
        )
    }

    /// The one place a message comes into being, so that its memory is always charged.
    fn assemble(
        packed: Box<[u8]>,
        properties_end: u32,
        large_body: Option<Box<Bytes>>,
        properties: &BasicProperties,
        stored_id: u64,
        memory: &Arc<MemoryTracker>,
    ) -> Message {
        let message = Message {
            packed,
            properties_end,
            large_body,
            ttl_ms: ttl_ms(properties),
            priority: properties.priority.unwrap_or(0),
            persistent: properties.delivery_mode == Some(PERSISTENT),
            stored_id: AtomicU64::new(stored_id),
            memory: Arc::clone(memory),
        };
        message.memory.add(message.charge());
        message
    }

    pub fn exchange(&self) -> &[u8] {
        let len = usize::from(self.packed[0]);
        &self.packed[1..1 + len]
    }

    pub fn routing_key(&self) -> &[u8] {
        let at = 1 + usize::from(self.packed[0]);
        let len = usize::from(self.packed[at]);
        &self.packed[at + 1..at + 1 + len]
    }

    /// The properties in wire form, ready to follow a content header's body size.
    pub fn encoded_properties(&self) -> &[u8] {
        let end = self.properties_end as usize;
        let start = names_end(&self.packed, end).unwrap_or(end);
        &self.packed[start..end]
    }

    pub fn body(&self) -> &[u8] {
        match &self.large_body {
            None => &self.packed[self.properties_end as usize..],
            Some(body) => body,
        }
    }

    pub fn ttl(&self) -> Option<Duration> {
        (self.ttl_ms != NO_TTL).then(|| Duration::from_millis(self.ttl_ms))
    }

    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// Bytes this message holds: names, properties and body.
    pub fn size(&self) -> usize {
        self.packed.len() + self.large_body.as_ref().map_or(0, |b| b.len())
    }

    fn charge(&self) -> usize {
        self.size() + MESSAGE_OVERHEAD
    }

    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    pub(crate) fn stored_id(&self) -> Option<u64> {
        match self.stored_id.load(Ordering::Acquire) {
            0 => None,
            id => Some(id),
        }
    }

    pub(crate) fn set_stored_id(&self, id: u64) {
        self.stored_id.store(id, Ordering::Release);
    }

    /// The message as the store writes it.
    pub(crate) fn stored(&self) -> StoredRef<'_> {
        StoredRef {
            packed: &self.packed,
            properties_end: self.properties_end,
            large_body: self.large_body.as_deref().map(|b| &b[..]),
        }
    }

    /// A message read back by recovery.
    pub(crate) fn recovered(
        stored: StoredMessage,
        id: u64,
        memory: &Arc<MemoryTracker>,
    ) -> Option<Message> {
        let end = stored.properties_end as usize;
        let start = names_end(&stored.packed, end)?;
        let encoded = Bytes::copy_from_slice(stored.packed.get(start..end)?);
        let properties = decode_properties(&encoded).ok()?;
        Some(Self::assemble(
            stored.packed,
            stored.properties_end,
            stored.large_body.map(Box::new),
            &properties,
            id,
            memory,
        ))
    }
}

/// Where the properties start in a packed `[exchange len][exchange][key len][key]...`, if both
/// names fit within its first `end` bytes.
fn names_end(packed: &[u8], end: usize) -> Option<usize> {
    let key_at = 1 + usize::from(*packed.first()?);
    let properties_at = key_at + 1 + usize::from(*packed.get(key_at)?);
    (properties_at <= end).then_some(properties_at)
}

const NO_TTL: u64 = u64::MAX;

fn ttl_ms(properties: &BasicProperties) -> u64 {
    properties
        .expiration
        .as_ref()
        .and_then(|e| e.as_str()?.parse::<u64>().ok())
        .map_or(NO_TTL, |ms| ms.min(NO_TTL - 1))
}

/// A message's bytes as the store writes them.
pub(crate) struct StoredRef<'a> {
    pub packed: &'a [u8],
    pub properties_end: u32,
    pub large_body: Option<&'a [u8]>,
}

/// A message's bytes as recovery reads them back.
pub(crate) struct StoredMessage {
    packed: Box<[u8]>,
    properties_end: u32,
    large_body: Option<Bytes>,
}

impl StoredMessage {
    pub(crate) fn size(&self) -> usize {
        self.packed.len() + self.large_body.as_ref().map_or(0, |b| b.len())
    }

    /// Splits a stored `[packed names and properties][body]` at `properties_end`; `None` if the
    /// names or the split point do not fit.
    pub(crate) fn split(bytes: Bytes, properties_end: u32) -> Option<StoredMessage> {
        let end = properties_end as usize;
        if end > bytes.len() {
            return None;
        }
        names_end(&bytes, end)?;
        let inline = bytes.len() - end <= INLINE_BODY_MAX;
        Some(if inline {
            StoredMessage {
                packed: bytes.to_vec().into_boxed_slice(),
                properties_end,
                large_body: None,
            }
        } else {
            StoredMessage {
                packed: bytes[..end].to_vec().into_boxed_slice(),
                properties_end,
                large_body: Some(bytes.slice(end..)),
            }
        })
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        self.memory.sub(self.charge());
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("exchange", &String::from_utf8_lossy(self.exchange()))
            .field("routing_key", &String::from_utf8_lossy(self.routing_key()))
            .field("body_len", &self.body().len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmqd_codec::decode_properties;

    fn message(body: Bytes, properties: &BasicProperties) -> (Message, Arc<MemoryTracker>) {
        let memory = Arc::new(MemoryTracker::new(usize::MAX));
        let message = Message::new(
            &ShortStr::from_static("amq.topic"),
            &ShortStr::from_static("a.b.c"),
            properties,
            body,
            &memory,
            &mut BytesMut::new(),
        );
        (message, memory)
    }

    #[test]
    fn small_and_large_bodies_come_back_with_their_names_and_properties() {
        let properties = BasicProperties {
            content_type: Some(ShortStr::from_static("text/plain")),
            delivery_mode: Some(2),
            priority: Some(7),
            expiration: Some(ShortStr::from_static("1500")),
            ..Default::default()
        };
        for size in [0, 16, INLINE_BODY_MAX, INLINE_BODY_MAX + 1, 1 << 20] {
            let body = Bytes::from(vec![b'x'; size]);
            let (m, _memory) = message(body.clone(), &properties);
            assert_eq!(m.exchange(), b"amq.topic");
            assert_eq!(m.routing_key(), b"a.b.c");
            assert_eq!(m.body(), &body[..]);
            let encoded = Bytes::copy_from_slice(m.encoded_properties());
            assert_eq!(decode_properties(&encoded).unwrap(), properties);
            assert_eq!(m.priority(), 7);
            assert!(m.is_persistent());
            assert_eq!(m.ttl(), Some(Duration::from_millis(1500)));
        }
    }

    #[test]
    fn memory_is_charged_while_the_message_lives() {
        let (m, memory) = message(Bytes::from_static(&[0; 100]), &BasicProperties::default());
        assert!(memory.used() >= 100);
        drop(m);
        assert_eq!(memory.used(), 0);
    }
}
