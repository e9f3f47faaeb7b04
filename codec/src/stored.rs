//! Content whose properties were encoded once, when the message was published. A broker keeps
//! messages this way and copies the bytes into every delivery, instead of holding a decoded
//! `BasicProperties` (hundreds of bytes per queued message) and re-encoding it each time.

use bytes::{BufMut, Bytes, BytesMut};

use crate::encoder::{encode_body, put_frame};
use crate::error::DecodeError;
use crate::spec::{BasicDeliver, BasicGetOk, BasicProperties, BasicReturn, class_id, frame};
use crate::wire::{BitWriter, Reader};

/// The method that carries a stored message to a client. Its strings are borrowed from the
/// stored message, so writing a delivery allocates nothing.
#[derive(Debug, Clone, Copy)]
pub enum ContentMethod<'a> {
    Deliver {
        consumer_tag: &'a [u8],
        delivery_tag: u64,
        redelivered: bool,
        exchange: &'a [u8],
        routing_key: &'a [u8],
    },
    GetOk {
        delivery_tag: u64,
        redelivered: bool,
        exchange: &'a [u8],
        routing_key: &'a [u8],
        message_count: u32,
    },
    Return {
        reply_code: u16,
        reply_text: &'a [u8],
        exchange: &'a [u8],
        routing_key: &'a [u8],
    },
}

/// Appends `properties` in their wire form (flags, then the present fields).
pub fn encode_properties(properties: &BasicProperties, out: &mut BytesMut) {
    properties.encode(out);
}

/// Reads properties written by [`encode_properties`] (or taken from a content header).
pub fn decode_properties(encoded: &Bytes) -> Result<BasicProperties, DecodeError> {
    let mut reader = Reader::new(encoded, "content header");
    let properties = BasicProperties::decode(&mut reader)?;
    reader.finish()?;
    Ok(properties)
}

/// Appends a whole message: `method`, a content header with the already encoded `properties`,
/// and the body frames. The bytes are those `encode_content` writes for the same message.
pub fn encode_stored_content(
    channel: u16,
    method: &ContentMethod<'_>,
    properties: &[u8],
    body: &[u8],
    frame_max: u32,
    out: &mut BytesMut,
) {
    put_frame(frame::METHOD, channel, out, |out| match *method {
        ContentMethod::Deliver {
            consumer_tag,
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
        } => {
            out.put_u16(class_id::BASIC);
            out.put_u16(BasicDeliver::METHOD_ID);
            put_short(out, consumer_tag);
            out.put_u64(delivery_tag);
            put_bit(out, redelivered);
            put_short(out, exchange);
            put_short(out, routing_key);
        }
        ContentMethod::GetOk {
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
            message_count,
        } => {
            out.put_u16(class_id::BASIC);
            out.put_u16(BasicGetOk::METHOD_ID);
            out.put_u64(delivery_tag);
            put_bit(out, redelivered);
            put_short(out, exchange);
            put_short(out, routing_key);
            out.put_u32(message_count);
        }
        ContentMethod::Return {
            reply_code,
            reply_text,
            exchange,
            routing_key,
        } => {
            out.put_u16(class_id::BASIC);
            out.put_u16(BasicReturn::METHOD_ID);
            out.put_u16(reply_code);
            put_short(out, reply_text);
            put_short(out, exchange);
            put_short(out, routing_key);
        }
    });
    put_frame(frame::HEADER, channel, out, |out| {
        out.put_u16(class_id::BASIC);
        out.put_u16(0);
        out.put_u64(body.len() as u64);
        out.put_slice(properties);
    });
    encode_body(channel, body, frame_max, out);
}

/// A shortstr from borrowed bytes. Callers pass names that were shortstrs when decoded; a
/// longer slice is cut rather than written with a length byte that lies about it.
fn put_short(out: &mut BytesMut, s: &[u8]) {
    debug_assert!(s.len() <= 255, "shortstr over 255 bytes");
    let s = &s[..s.len().min(255)];
    out.put_u8(s.len() as u8);
    out.put_slice(s);
}

fn put_bit(out: &mut BytesMut, bit: bool) {
    let mut bits = BitWriter::new();
    bits.push(out, bit);
    bits.flush(out);
}
