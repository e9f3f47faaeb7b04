//! The streaming frame decoder: bytes in whatever pieces the socket delivers, frames out.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::DecodeError;
use crate::frames::{ContentHeader, DEFAULT_FRAME_MAX, Frame};
use crate::spec::{BasicProperties, Method, class_id, frame};
use crate::wire::Reader;

const HEADER_LEN: usize = 7;

/// Cuts frames off the front of a read buffer. Whatever the split of the stream into reads, the
/// same frames come out: it only acts on whole frames and keeps no state between calls but the
/// negotiated frame_max.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    frame_max: u32,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder {
            frame_max: DEFAULT_FRAME_MAX,
        }
    }
}

impl FrameDecoder {
    pub fn new(frame_max: u32) -> Self {
        FrameDecoder { frame_max }
    }

    /// Sets the negotiated frame_max. Zero means no limit, as in the spec.
    pub fn set_frame_max(&mut self, frame_max: u32) {
        self.frame_max = frame_max;
    }

    pub fn frame_max(&self) -> u32 {
        self.frame_max
    }

    /// Takes one frame off the front of `buf`. `Ok(None)` means more bytes are needed; nothing is
    /// consumed then. After an error the stream is unusable: close the connection with the error's
    /// reply code.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let frame_type = buf[0];
        let channel = u16::from_be_bytes([buf[1], buf[2]]);
        let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]);
        self.check_header(frame_type, channel, size)?;
        let total = HEADER_LEN + size as usize + 1;
        if buf.len() < total {
            return Ok(None);
        }
        let end = buf[total - 1];
        if end != frame::END {
            return Err(DecodeError::MissingFrameEnd(end));
        }
        let mut whole = buf.split_to(total).freeze();
        whole.advance(HEADER_LEN);
        let payload = whole.slice(..size as usize);
        Ok(Some(match frame_type {
            frame::METHOD => Frame::Method {
                channel,
                method: decode_method(&payload)?,
            },
            frame::HEADER => Frame::Header {
                channel,
                header: decode_content_header(&payload)?,
            },
            frame::BODY => Frame::Body { channel, payload },
            _ => Frame::Heartbeat,
        }))
    }

    /// Everything that can be judged from the 7-byte header, before waiting for the payload, so
    /// a forged size is refused before anything is buffered for it.
    ///
    /// Every frame type is held to frame_max, and (as RabbitMQ 3.10 does) the payload alone is
    /// compared with it: a frame of frame_max + 8 bytes in all still passes.
    fn check_header(&self, frame_type: u8, channel: u16, size: u32) -> Result<(), DecodeError> {
        match frame_type {
            frame::METHOD | frame::HEADER | frame::BODY => {}
            frame::HEARTBEAT if channel != 0 => {
                return Err(DecodeError::HeartbeatOnChannel(channel));
            }
            frame::HEARTBEAT => {}
            other => return Err(DecodeError::UnknownFrameType(other)),
        }
        if self.frame_max != 0 && size > self.frame_max {
            return Err(DecodeError::FrameTooLarge {
                size,
                frame_max: self.frame_max,
            });
        }
        Ok(())
    }
}

fn decode_method(payload: &Bytes) -> Result<Method, DecodeError> {
    let mut reader = Reader::new(payload, "method frame");
    let class = reader.u16()?;
    let method = reader.u16()?;
    let decoded = Method::decode(class, method, &mut reader)?;
    reader.finish()?;
    Ok(decoded)
}

fn decode_content_header(payload: &Bytes) -> Result<ContentHeader, DecodeError> {
    let mut reader = Reader::new(payload, "content header");
    let class = reader.u16()?;
    let _weight = reader.u16()?;
    let body_size = reader.u64()?;
    if class != class_id::BASIC {
        return Err(DecodeError::ContentClass(class));
    }
    let properties = BasicProperties::decode(&mut reader)?;
    reader.finish()?;
    Ok(ContentHeader {
        class_id: class,
        body_size,
        properties,
    })
}
