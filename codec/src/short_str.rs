//! AMQP short strings: at most 255 bytes, used for names, routing keys and tags.

use std::borrow::Borrow;
use std::fmt;

use bytes::Bytes;

/// An AMQP `shortstr`: up to 255 bytes. Held as `Bytes` so that names decoded from a frame share
/// the read buffer. The bytes are usually, but not necessarily, UTF-8; RabbitMQ does not check.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortStr(Bytes);

/// A string longer than the 255 bytes a `shortstr` can hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} bytes do not fit in a shortstr (at most 255)")]
pub struct TooLong(pub usize);

impl ShortStr {
    pub const MAX_LEN: usize = 255;

    /// A constant short string. Fails to compile (in const context) or panics if over 255 bytes,
    /// which for a literal is a programming error, not input.
    pub const fn from_static(s: &'static str) -> Self {
        assert!(s.len() <= Self::MAX_LEN, "shortstr literal over 255 bytes");
        ShortStr(Bytes::from_static(s.as_bytes()))
    }

    pub fn new(bytes: impl Into<Bytes>) -> Result<Self, TooLong> {
        let bytes = bytes.into();
        if bytes.len() > Self::MAX_LEN {
            return Err(TooLong(bytes.len()));
        }
        Ok(ShortStr(bytes))
    }

    /// Cuts `s` to at most 255 bytes on a character boundary: for reply texts, where a long queue
    /// name must not turn an error report into a second error.
    pub fn truncating(s: impl Into<String>) -> Self {
        let mut s = s.into();
        if s.len() > Self::MAX_LEN {
            let mut end = Self::MAX_LEN;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
        }
        ShortStr(Bytes::from(s))
    }

    /// Only for the decoder, which has already bounded the length by a u8.
    pub(crate) fn from_wire(bytes: Bytes) -> Self {
        debug_assert!(bytes.len() <= Self::MAX_LEN);
        ShortStr(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The string, if it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl TryFrom<&str> for ShortStr {
    type Error = TooLong;
    fn try_from(s: &str) -> Result<Self, TooLong> {
        ShortStr::new(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl TryFrom<String> for ShortStr {
    type Error = TooLong;
    fn try_from(s: String) -> Result<Self, TooLong> {
        ShortStr::new(Bytes::from(s))
    }
}

impl Borrow<[u8]> for ShortStr {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for ShortStr {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq<str> for ShortStr {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for ShortStr {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Display for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.to_string_lossy(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_256_bytes() {
        assert_eq!(ShortStr::try_from("a".repeat(256)), Err(TooLong(256)));
        assert!(ShortStr::try_from("a".repeat(255)).is_ok());
    }

    #[test]
    fn truncating_keeps_whole_characters() {
        let s = ShortStr::truncating("é".repeat(200));
        assert_eq!(s.len(), 254);
        assert!(s.as_str().is_some());
    }
}
