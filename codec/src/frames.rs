//! Frames as they travel: a method, a content header, a slice of body, or a heartbeat.

use bytes::Bytes;

use crate::spec::{BasicProperties, Method};

/// The frame_max RabbitMQ offers in `connection.tune` (and our default).
pub const DEFAULT_FRAME_MAX: u32 = 131_072;

/// Frame header (type, channel, size) plus the frame-end octet.
pub const FRAME_OVERHEAD: u32 = 8;

/// One decoded frame.
// The header variant is large (fourteen optional properties), but boxing it would cost an
// allocation per published message; a frame is moved a handful of times, not stored.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Method {
        channel: u16,
        method: Method,
    },
    Header {
        channel: u16,
        header: ContentHeader,
    },
    /// A body slice, shared with the read buffer rather than copied out of it.
    Body {
        channel: u16,
        payload: Bytes,
    },
    Heartbeat,
}

impl Frame {
    pub fn channel(&self) -> u16 {
        match self {
            Frame::Method { channel, .. }
            | Frame::Header { channel, .. }
            | Frame::Body { channel, .. } => *channel,
            Frame::Heartbeat => 0,
        }
    }
}

/// The content header frame that follows a content-carrying method (`basic.publish`,
/// `basic.deliver`, `basic.return`, `basic.get-ok`). The spec's `weight` field is always zero
/// and is not kept.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentHeader {
    pub class_id: u16,
    pub body_size: u64,
    pub properties: BasicProperties,
}
