//! Frame encoding. Every function appends to one `BytesMut`, so a connection can gather many
//! frames and hand the socket a single write.

use bytes::{BufMut, BytesMut};

use crate::frames::{ContentHeader, FRAME_OVERHEAD, Frame};
use crate::spec::{BasicProperties, Method, class_id, frame};
use crate::wire::wire_len;

/// Appends any frame.
pub fn encode_frame(frame: &Frame, out: &mut BytesMut) {
    match frame {
        Frame::Method { channel, method } => encode_method(*channel, method, out),
        Frame::Header { channel, header } => encode_content_header(*channel, header, out),
        Frame::Body { channel, payload } => {
            put_frame(frame::BODY, *channel, out, |out| out.put_slice(payload))
        }
        Frame::Heartbeat => encode_heartbeat(out),
    }
}

pub fn encode_method(channel: u16, method: &Method, out: &mut BytesMut) {
    put_frame(frame::METHOD, channel, out, |out| {
        out.put_u16(method.class_id());
        out.put_u16(method.method_id());
        method.encode_arguments(out);
    });
}

pub fn encode_content_header(channel: u16, header: &ContentHeader, out: &mut BytesMut) {
    put_frame(frame::HEADER, channel, out, |out| {
        out.put_u16(header.class_id);
        out.put_u16(0);
        out.put_u64(header.body_size);
        header.properties.encode(out);
    });
}

/// Appends `body` as body frames of at most `frame_max` bytes each (overhead included). An
/// empty body takes no frame at all, as the spec says. `frame_max` 0 means unlimited.
pub fn encode_body(channel: u16, body: &[u8], frame_max: u32, out: &mut BytesMut) {
    let chunk = match frame_max {
        0 => usize::MAX,
        max => max.saturating_sub(FRAME_OVERHEAD).max(1) as usize,
    };
    out.reserve(body.len() + body.len().div_ceil(chunk) * FRAME_OVERHEAD as usize);
    for piece in body.chunks(chunk) {
        put_frame(frame::BODY, channel, out, |out| out.put_slice(piece));
    }
}

/// Appends a whole message: the content-carrying method, its header, and its body frames.
pub fn encode_content(
    channel: u16,
    method: &Method,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
    out: &mut BytesMut,
) {
    encode_method(channel, method, out);
    put_frame(frame::HEADER, channel, out, |out| {
        out.put_u16(class_id::BASIC);
        out.put_u16(0);
        out.put_u64(body.len() as u64);
        properties.encode(out);
    });
    encode_body(channel, body, frame_max, out);
}

pub fn encode_heartbeat(out: &mut BytesMut) {
    out.put_slice(&[frame::HEARTBEAT, 0, 0, 0, 0, 0, 0, frame::END]);
}

/// Writes type and channel, a placeholder size, the payload, then patches the size and adds
/// the frame-end octet. Writing the payload in place avoids encoding it twice to learn its size.
pub(crate) fn put_frame(
    frame_type: u8,
    channel: u16,
    out: &mut BytesMut,
    payload: impl FnOnce(&mut BytesMut),
) {
    out.put_u8(frame_type);
    out.put_u16(channel);
    let size_at = out.len();
    out.put_u32(0);
    payload(out);
    let size = wire_len(out.len() - size_at - 4);
    out[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    out.put_u8(frame::END);
}
