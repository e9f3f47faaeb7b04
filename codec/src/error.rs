//! Decode errors, each tied to the reply code the server must close the connection with.

use crate::spec::reply_code;

/// Why a byte stream could not be decoded. Every variant is a connection error: the server answers
/// with `connection.close` carrying [`DecodeError::reply_code`] and [`DecodeError::reply_text`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown frame type {0}")]
    UnknownFrameType(u8),
    #[error("frame does not end with 0xce (found {0:#04x})")]
    MissingFrameEnd(u8),
    #[error("frame payload of {size} bytes is larger than frame_max {frame_max}")]
    FrameTooLarge { size: u32, frame_max: u32 },
    #[error("heartbeat frame on channel {0}, heartbeats belong on channel 0")]
    HeartbeatOnChannel(u16),
    #[error("cannot decode {what}: it ends early")]
    Truncated { what: &'static str },
    #[error("cannot decode {what}: {extra} unexpected bytes after its last field")]
    TrailingBytes { what: &'static str, extra: usize },
    #[error("unknown method class {class_id} method {method_id}")]
    UnknownMethod { class_id: u16, method_id: u16 },
    #[error("field table value has unknown type tag {0:?}")]
    UnknownFieldType(char),
    #[error("field tables nested deeper than {0} levels")]
    NestingTooDeep(usize),
    #[error("content header property flags {0:#06x} set bits that basic properties do not have")]
    InvalidPropertyFlags(u16),
    #[error("expected content header for class 60, got one for class {0} instead")]
    ContentClass(u16),
}

impl DecodeError {
    /// The AMQP reply code for the `connection.close` this error must trigger.
    pub fn reply_code(&self) -> u16 {
        match self {
            DecodeError::UnknownFrameType(_)
            | DecodeError::MissingFrameEnd(_)
            | DecodeError::FrameTooLarge { .. }
            | DecodeError::Truncated { .. }
            | DecodeError::TrailingBytes { .. } => reply_code::FRAME_ERROR,
            DecodeError::UnknownFieldType(_)
            | DecodeError::NestingTooDeep(_)
            | DecodeError::InvalidPropertyFlags(_) => reply_code::SYNTAX_ERROR,
            DecodeError::UnknownMethod { .. } => reply_code::COMMAND_INVALID,
            DecodeError::ContentClass(_) | DecodeError::HeartbeatOnChannel(_) => {
                reply_code::UNEXPECTED_FRAME
            }
        }
    }

    /// The reply text in RabbitMQ's style: the constant's name, a dash, then the detail.
    pub fn reply_text(&self) -> String {
        format!("{} - {self}", reply_code::name(self.reply_code()))
    }
}
