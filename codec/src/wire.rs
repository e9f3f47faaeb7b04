//! Primitive wire types (integers, strings, tables), read with nom from a frame's payload.
//!
//! The reader keeps the `Bytes` of the whole payload so that strings come out as zero-copy
//! slices of the read buffer rather than fresh allocations.

use bytes::{BufMut, Bytes, BytesMut};
use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::{be_u8, be_u16, be_u32, be_u64};

use crate::error::DecodeError;
use crate::short_str::ShortStr;

type NomResult<'a, T> = nom::IResult<&'a [u8], T>;

pub(crate) struct Reader<'a> {
    payload: &'a Bytes,
    rest: &'a [u8],
    /// What is being decoded, for error messages.
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(payload: &'a Bytes, what: &'static str) -> Self {
        Reader {
            payload,
            rest: payload,
            what,
        }
    }

    pub(crate) fn set_context(&mut self, what: &'static str) {
        self.what = what;
    }

    fn run<T>(&mut self, parser: impl Fn(&'a [u8]) -> NomResult<'a, T>) -> Result<T, DecodeError> {
        match parser(self.rest) {
            Ok((rest, value)) => {
                self.rest = rest;
                Ok(value)
            }
            Err(_) => Err(DecodeError::Truncated { what: self.what }),
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.run(be_u8)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.run(be_u16)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.run(be_u32)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.run(be_u64)
    }

    /// `n` raw bytes as a slice of the payload. `take` checks the length against what is there
    /// before anything is allocated, so a forged length cannot make us reserve memory.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let slice = self.run(|input| take(n).parse(input))?;
        Ok(self.payload.slice_ref(slice))
    }

    pub(crate) fn short_str(&mut self) -> Result<ShortStr, DecodeError> {
        let len = self.u8()?;
        Ok(ShortStr::from_wire(self.bytes(usize::from(len))?))
    }

    pub(crate) fn long_str(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u32()?;
        self.bytes(len as usize)
    }

    /// A sub-reader over the next `len` bytes (a nested table or array), advancing past them.
    pub(crate) fn sub_reader(&mut self, len: usize) -> Result<Reader<'a>, DecodeError> {
        let slice = self.run(|input| take(len).parse(input))?;
        Ok(Reader {
            payload: self.payload,
            rest: slice,
            what: self.what,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                what: self.what,
                extra: self.rest.len(),
            })
        }
    }
}

pub(crate) fn put_short_str(out: &mut BytesMut, s: &ShortStr) {
    // ShortStr guarantees len <= 255.
    out.put_u8(s.len() as u8);
    out.put_slice(s.as_bytes());
}

pub(crate) fn put_long_str(out: &mut BytesMut, s: &[u8]) {
    out.put_u32(wire_len(s.len()));
    out.put_slice(s);
}

/// Lengths on the wire are u32. Anything larger than 4 GiB cannot be sent at all, and no
/// frame the broker builds comes near that (frame_max caps bodies; bodies are split).
pub(crate) fn wire_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Writes a placeholder u32 length, runs `body`, then patches the length to what `body` wrote.
pub(crate) fn put_length_prefixed(out: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let at = out.len();
    out.put_u32(0);
    body(out);
    let len = wire_len(out.len() - at - 4);
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Packs consecutive bit fields into octets, least significant bit first, as the spec says.
pub(crate) struct BitWriter {
    octet: u8,
    used: u8,
}

impl BitWriter {
    pub(crate) fn new() -> Self {
        BitWriter { octet: 0, used: 0 }
    }

    pub(crate) fn push(&mut self, out: &mut BytesMut, bit: bool) {
        if self.used == 8 {
            self.flush(out);
        }
        if bit {
            self.octet |= 1 << self.used;
        }
        self.used += 1;
    }

    pub(crate) fn flush(&mut self, out: &mut BytesMut) {
        if self.used > 0 {
            out.put_u8(self.octet);
        }
        self.octet = 0;
        self.used = 0;
    }
}

/// The reading side of [`BitWriter`].
pub(crate) struct BitReader {
    octet: u8,
    used: u8,
}

impl BitReader {
    pub(crate) fn new() -> Self {
        BitReader { octet: 0, used: 8 }
    }

    pub(crate) fn next(&mut self, reader: &mut Reader<'_>) -> Result<bool, DecodeError> {
        if self.used == 8 {
            self.octet = reader.u8()?;
            self.used = 0;
        }
        let bit = self.octet & (1 << self.used) != 0;
        self.used += 1;
        Ok(bit)
    }
}
