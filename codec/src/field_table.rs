//! Field tables and arrays with RabbitMQ's type tags (which differ from the 0-9-1 spec's:
//! `s` is a signed 16-bit integer, `l` a signed 64-bit one, `x` a byte array).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::DecodeError;
use crate::short_str::ShortStr;
use crate::wire::{Reader, put_length_prefixed, put_long_str, put_short_str};

/// Tables nested deeper than this are refused with 502: decoding, encoding and dropping all
/// recurse, and a frame full of empty nested tables must not exhaust a task's stack. No client
/// nests anywhere near this deep.
pub const MAX_NESTING: usize = 128;

/// A decimal value: `value / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    pub scale: u8,
    pub value: u32,
}

/// One value in a field table or array. Each variant is one type tag, so what was decoded
/// re-encodes to the same bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// `t`
    Bool(bool),
    /// `b`
    I8(i8),
    /// `B`
    U8(u8),
    /// `s` (RabbitMQ's meaning; the written spec says short string)
    I16(i16),
    /// `u`
    U16(u16),
    /// `I`
    I32(i32),
    /// `i`
    U32(u32),
    /// `l`; the `L` tag decodes to this too, as in RabbitMQ, which never emits `L`
    I64(i64),
    /// `f`
    F32(f32),
    /// `d`
    F64(f64),
    /// `D`
    Decimal(Decimal),
    /// `S`
    LongStr(Bytes),
    /// `x`
    ByteArray(Bytes),
    /// `A`
    Array(Vec<FieldValue>),
    /// `T`: seconds since the epoch
    Timestamp(u64),
    /// `F`
    Table(FieldTable),
    /// `V`
    Void,
}

/// An AMQP field table. Entries keep their wire order (and any duplicate keys) so that a table
/// re-encodes to the bytes it came from; lookups take the first match, as RabbitMQ's do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldTable(Vec<(ShortStr, FieldValue)>);

impl FieldTable {
    pub fn new() -> Self {
        FieldTable(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.0
            .iter()
            .find(|(k, _)| k.as_bytes() == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// Sets `key`, replacing the first entry of that name or appending a new one.
    pub fn insert(&mut self, key: ShortStr, value: FieldValue) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key, value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<FieldValue> {
        let at = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(at).1)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&ShortStr, &FieldValue)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        decode_table(reader, 0)
    }

    /// Decodes a table's entries with no length prefix: the form of an AMQPLAIN login response.
    pub fn decode_entries(bytes: &Bytes) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes, "field table");
        let mut table = Vec::new();
        while !reader.is_empty() {
            let key = reader.short_str()?;
            let value = decode_value(&mut reader, 0)?;
            table.push((key, value));
        }
        Ok(FieldTable(table))
    }

    /// Encodes the table, length prefix included, on its own.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) {
        put_length_prefixed(out, |out| {
            for (key, value) in &self.0 {
                put_short_str(out, key);
                value.encode(out);
            }
        });
    }
}

impl FromIterator<(ShortStr, FieldValue)> for FieldTable {
    fn from_iter<I: IntoIterator<Item = (ShortStr, FieldValue)>>(iter: I) -> Self {
        FieldTable(iter.into_iter().collect())
    }
}

impl IntoIterator for FieldTable {
    type Item = (ShortStr, FieldValue);
    type IntoIter = std::vec::IntoIter<(ShortStr, FieldValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

fn decode_table(reader: &mut Reader<'_>, depth: usize) -> Result<FieldTable, DecodeError> {
    let len = reader.u32()? as usize;
    let mut entries = reader.sub_reader(len)?;
    let mut table = Vec::new();
    while !entries.is_empty() {
        let key = entries.short_str()?;
        let value = decode_value(&mut entries, depth)?;
        table.push((key, value));
    }
    Ok(FieldTable(table))
}

fn decode_array(reader: &mut Reader<'_>, depth: usize) -> Result<Vec<FieldValue>, DecodeError> {
    let len = reader.u32()? as usize;
    let mut items = reader.sub_reader(len)?;
    let mut array = Vec::new();
    while !items.is_empty() {
        array.push(decode_value(&mut items, depth)?);
    }
    Ok(array)
}

fn decode_value(reader: &mut Reader<'_>, depth: usize) -> Result<FieldValue, DecodeError> {
    let tag = reader.u8()?;
    let nested = || {
        if depth + 1 > MAX_NESTING {
            Err(DecodeError::NestingTooDeep(MAX_NESTING))
        } else {
            Ok(depth + 1)
        }
    };
    Ok(match tag {
        b't' => FieldValue::Bool(reader.u8()? != 0),
        b'b' => FieldValue::I8(reader.u8()? as i8),
        b'B' => FieldValue::U8(reader.u8()?),
        b's' => FieldValue::I16(reader.u16()? as i16),
        b'u' => FieldValue::U16(reader.u16()?),
        b'I' => FieldValue::I32(reader.u32()? as i32),
        b'i' => FieldValue::U32(reader.u32()?),
        b'l' | b'L' => FieldValue::I64(reader.u64()? as i64),
        b'f' => FieldValue::F32(f32::from_bits(reader.u32()?)),
        b'd' => FieldValue::F64(f64::from_bits(reader.u64()?)),
        b'D' => FieldValue::Decimal(Decimal {
            scale: reader.u8()?,
            value: reader.u32()?,
        }),
        b'S' => FieldValue::LongStr(reader.long_str()?),
        b'x' => FieldValue::ByteArray(reader.long_str()?),
        b'A' => FieldValue::Array(decode_array(reader, nested()?)?),
        b'T' => FieldValue::Timestamp(reader.u64()?),
        b'F' => FieldValue::Table(decode_table(reader, nested()?)?),
        b'V' => FieldValue::Void,
        other => return Err(DecodeError::UnknownFieldType(char::from(other))),
    })
}

impl FieldValue {
    pub fn type_tag(&self) -> u8 {
        match self {
            FieldValue::Bool(_) => b't',
            FieldValue::I8(_) => b'b',
            FieldValue::U8(_) => b'B',
            FieldValue::I16(_) => b's',
            FieldValue::U16(_) => b'u',
            FieldValue::I32(_) => b'I',
            FieldValue::U32(_) => b'i',
            FieldValue::I64(_) => b'l',
            FieldValue::F32(_) => b'f',
            FieldValue::F64(_) => b'd',
            FieldValue::Decimal(_) => b'D',
            FieldValue::LongStr(_) => b'S',
            FieldValue::ByteArray(_) => b'x',
            FieldValue::Array(_) => b'A',
            FieldValue::Timestamp(_) => b'T',
            FieldValue::Table(_) => b'F',
            FieldValue::Void => b'V',
        }
    }

    /// The value as a signed integer, whichever integer tag it arrived with: `x-` arguments such
    /// as `x-message-ttl` come as `I`, `l`, `s`, `b` or unsigned tags depending on the client.
    pub fn as_i64(&self) -> Option<i64> {
        Some(match *self {
            FieldValue::I8(v) => v.into(),
            FieldValue::U8(v) => v.into(),
            FieldValue::I16(v) => v.into(),
            FieldValue::U16(v) => v.into(),
            FieldValue::I32(v) => v.into(),
            FieldValue::U32(v) => v.into(),
            FieldValue::I64(v) => v,
            _ => return None,
        })
    }

    /// The value as bytes, for string-like values (`S` and `x`).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            FieldValue::LongStr(b) | FieldValue::ByteArray(b) => Some(b),
            _ => None,
        }
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.type_tag());
        match self {
            FieldValue::Bool(v) => out.put_u8(u8::from(*v)),
            FieldValue::I8(v) => out.put_i8(*v),
            FieldValue::U8(v) => out.put_u8(*v),
            FieldValue::I16(v) => out.put_i16(*v),
            FieldValue::U16(v) => out.put_u16(*v),
            FieldValue::I32(v) => out.put_i32(*v),
            FieldValue::U32(v) => out.put_u32(*v),
            FieldValue::I64(v) => out.put_i64(*v),
            FieldValue::F32(v) => out.put_u32(v.to_bits()),
            FieldValue::F64(v) => out.put_u64(v.to_bits()),
            FieldValue::Decimal(d) => {
                out.put_u8(d.scale);
                out.put_u32(d.value);
            }
            FieldValue::LongStr(b) | FieldValue::ByteArray(b) => put_long_str(out, b),
            FieldValue::Array(items) => put_length_prefixed(out, |out| {
                for item in items {
                    item.encode(out);
                }
            }),
            FieldValue::Timestamp(v) => out.put_u64(*v),
            FieldValue::Table(table) => table.encode(out),
            FieldValue::Void => {}
        }
    }
}

impl From<bool> for FieldValue {
    fn from(v: bool) -> Self {
        FieldValue::Bool(v)
    }
}

impl From<i32> for FieldValue {
    fn from(v: i32) -> Self {
        FieldValue::I32(v)
    }
}

impl From<i64> for FieldValue {
    fn from(v: i64) -> Self {
        FieldValue::I64(v)
    }
}

impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        FieldValue::LongStr(Bytes::copy_from_slice(v.as_bytes()))
    }
}

impl From<FieldTable> for FieldValue {
    fn from(v: FieldTable) -> Self {
        FieldValue::Table(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<FieldTable, DecodeError> {
        let payload = Bytes::copy_from_slice(bytes);
        let mut reader = Reader::new(&payload, "table");
        let table = FieldTable::decode(&mut reader)?;
        reader.finish()?;
        Ok(table)
    }

    fn nested_tables(depth: usize) -> Vec<u8> {
        // Innermost: an empty table. Each level wraps it as key "k" of type F.
        let mut inner = vec![0, 0, 0, 0];
        for _ in 0..depth {
            let mut entry = vec![1, b'k', b'F'];
            entry.extend_from_slice(&inner);
            let mut table = (entry.len() as u32).to_be_bytes().to_vec();
            table.extend_from_slice(&entry);
            inner = table;
        }
        inner
    }

    #[test]
    fn rabbitmq_tags_decode_with_rabbitmq_meanings() {
        // "a" => s -2 (signed 16), "b" => l -1 (signed 64), "c" => x [1,2]
        let mut bytes = vec![];
        let entries: Vec<u8> = [
            &[1, b'a', b's', 0xff, 0xfe][..],
            &[
                1, b'b', b'l', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            &[1, b'c', b'x', 0, 0, 0, 2, 1, 2],
        ]
        .concat();
        bytes.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&entries);
        let table = decode(&bytes).unwrap();
        assert_eq!(table.get("a"), Some(&FieldValue::I16(-2)));
        assert_eq!(table.get("b"), Some(&FieldValue::I64(-1)));
        assert_eq!(
            table.get("c"),
            Some(&FieldValue::ByteArray(Bytes::from_static(&[1, 2])))
        );
    }

    #[test]
    fn unknown_tag_is_a_syntax_error() {
        let bytes = [0, 0, 0, 4, 1, b'a', b'U', 0];
        let err = decode(&bytes).unwrap_err();
        assert_eq!(err, DecodeError::UnknownFieldType('U'));
        assert_eq!(err.reply_code(), 502);
    }

    #[test]
    fn forged_length_is_an_error_not_an_allocation() {
        let err = decode(&[0xff, 0xff, 0xff, 0xff, 1, b'a']).unwrap_err();
        assert_eq!(err.reply_code(), 501);
    }

    #[test]
    fn nesting_up_to_the_limit_decodes_and_beyond_is_refused() {
        assert!(decode(&nested_tables(MAX_NESTING)).is_ok());
        assert_eq!(
            decode(&nested_tables(MAX_NESTING + 1)).unwrap_err(),
            DecodeError::NestingTooDeep(MAX_NESTING)
        );
    }
}
