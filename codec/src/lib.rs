//! The AMQP 0-9-1 wire format, as RabbitMQ speaks it: frames, every method of the spec and of
//! RabbitMQ's extensions, content headers with the basic properties, and field tables with
//! RabbitMQ's type tags.
//!
//! Pure: no sockets, no clocks. [`FrameDecoder`] cuts frames off a read buffer fed in any
//! pieces; the `encode_*` functions append frames to one write buffer.

mod decoder;
mod encoder;
mod error;
mod field_table;
mod frames;
mod protocol_header;
mod short_str;
pub mod spec;
mod stored;
mod wire;

pub use decoder::FrameDecoder;
pub use encoder::{
    encode_body, encode_content, encode_content_header, encode_frame, encode_heartbeat,
    encode_method,
};
pub use error::DecodeError;
pub use field_table::{Decimal, FieldTable, FieldValue, MAX_NESTING};
pub use frames::{ContentHeader, DEFAULT_FRAME_MAX, FRAME_OVERHEAD, Frame};
pub use protocol_header::{PROTOCOL_HEADER, ProtocolHeaderCheck, check_protocol_header};
pub use short_str::{ShortStr, TooLong};
pub use spec::*;
pub use stored::{ContentMethod, decode_properties, encode_properties, encode_stored_content};
