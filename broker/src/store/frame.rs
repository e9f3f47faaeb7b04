//! The on-disk format. A segment file is an 8-byte header (magic `RMQDSEG` and a version byte)
//! followed by records, each framed as
//!
//! ```text
//! [payload len: u32 LE][crc32 of kind byte + payload: u32 LE][kind: u8][payload]
//! ```
//!
//! The length comes first so that a reader knows how much to read before it can check anything;
//! the checksum covers the kind as well, so a flipped kind byte is caught like a flipped payload
//! byte. A zero-filled region (what some file systems show for a tail that was never written)
//! fails the check, because the crc32 of a zero kind byte is not zero.

/// Identifies our segment files; a file that does not start with it is not trusted.
const SEGMENT_MAGIC: [u8; 7] = *b"RMQDSEG";
/// Bumped if the framing ever changes, so an old binary refuses a newer log instead of
/// misreading it.
const FORMAT_VERSION: u8 = 1;
pub(crate) const SEGMENT_HEADER_LEN: u64 = 8;
pub(crate) const RECORD_HEADER_LEN: usize = 9;

pub(crate) fn segment_header() -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut header = [0; SEGMENT_HEADER_LEN as usize];
    header[..7].copy_from_slice(&SEGMENT_MAGIC);
    header[7] = FORMAT_VERSION;
    header
}

pub(crate) fn check_segment_header(header: &[u8]) -> Result<(), Corruption> {
    if header.len() < SEGMENT_HEADER_LEN as usize {
        return Err(Corruption::TornSegmentHeader);
    }
    if header[..7] != SEGMENT_MAGIC {
        return Err(Corruption::BadMagic);
    }
    if header[7] != FORMAT_VERSION {
        return Err(Corruption::UnsupportedVersion(header[7]));
    }
    Ok(())
}

pub(crate) fn checksum(kind: u8, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind]);
    hasher.update(payload);
    hasher.finalize()
}

/// The fixed part in front of every payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub len: u32,
    pub crc: u32,
    pub kind: u8,
}

impl RecordHeader {
    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut out = [0; RECORD_HEADER_LEN];
        out[..4].copy_from_slice(&self.len.to_le_bytes());
        out[4..8].copy_from_slice(&self.crc.to_le_bytes());
        out[8] = self.kind;
        out
    }

    pub fn decode(bytes: &[u8; RECORD_HEADER_LEN]) -> Self {
        RecordHeader {
            len: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            crc: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            kind: bytes[8],
        }
    }

    /// Bytes the whole record takes on disk.
    pub fn frame_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + u64::from(self.len)
    }

    pub fn verify(&self, payload: &[u8]) -> Result<(), Corruption> {
        let actual = checksum(self.kind, payload);
        if actual != self.crc {
            return Err(Corruption::Checksum {
                stored: self.crc,
                actual,
            });
        }
        Ok(())
    }
}

/// Why recovery (or a read) rejected what it found at some offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Corruption {
    #[error("segment header is incomplete")]
    TornSegmentHeader,
    #[error("not a segment file (bad magic)")]
    BadMagic,
    #[error("unsupported segment format version {0}")]
    UnsupportedVersion(u8),
    #[error("record header is incomplete ({available} of {RECORD_HEADER_LEN} bytes)")]
    TornHeader { available: u64 },
    #[error("record length {len} exceeds the limit of {max} bytes")]
    AbsurdLength { len: u32, max: u32 },
    #[error("record of {len} bytes is incomplete ({available} bytes present)")]
    TornPayload { len: u32, available: u64 },
    #[error("checksum mismatch (stored {stored:#010x}, computed {actual:#010x})")]
    Checksum { stored: u32, actual: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_header_round_trips() {
        let header = RecordHeader {
            len: 0x0102_0304,
            crc: 0xdead_beef,
            kind: 7,
        };
        assert_eq!(RecordHeader::decode(&header.encode()), header);
        assert_eq!(header.encode()[..4], [4, 3, 2, 1]);
    }

    #[test]
    fn checksum_covers_the_kind_byte() {
        let header = RecordHeader {
            len: 5,
            crc: checksum(1, b"hello"),
            kind: 2,
        };
        assert!(matches!(
            header.verify(b"hello"),
            Err(Corruption::Checksum { .. })
        ));
    }

    #[test]
    fn zeroed_record_is_not_valid() {
        let header = RecordHeader::decode(&[0; RECORD_HEADER_LEN]);
        assert!(header.verify(&[]).is_err());
    }

    #[test]
    fn segment_header_is_checked() {
        assert_eq!(check_segment_header(&segment_header()), Ok(()));
        assert_eq!(
            check_segment_header(&segment_header()[..5]),
            Err(Corruption::TornSegmentHeader)
        );
        let mut wrong = segment_header();
        wrong[0] = b'X';
        assert_eq!(check_segment_header(&wrong), Err(Corruption::BadMagic));
        wrong = segment_header();
        wrong[7] = 99;
        assert_eq!(
            check_segment_header(&wrong),
            Err(Corruption::UnsupportedVersion(99))
        );
    }
}
