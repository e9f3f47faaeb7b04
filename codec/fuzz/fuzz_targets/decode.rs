//! Fuzzes `FrameDecoder` with arbitrary bytes.
//!
//! Input layout: byte 0 picks the frame_max, byte 1 picks how the rest is cut into reads, and
//! the remaining bytes are the stream. The target checks that
//! - decoding never panics, whatever the bytes, the frame_max or the cut;
//! - feeding the stream in pieces yields the same frames and the same error as feeding it whole;
//! - every decoded frame, re-encoded with `encode_frame`, decodes again to an equal frame, and
//!   re-encoding that gives the same bytes.
//!
//! The assertions of those checks are the only panics the target can raise.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rmqd_codec::{
    DEFAULT_FRAME_MAX, DecodeError, FRAME_OVERHEAD, Frame, FrameDecoder, NON_BODY_FRAME_CEILING,
    encode_frame,
};

/// What decoding a whole stream produced: its frames, then the error that stopped it, if any.
struct Outcome {
    frames: Vec<Frame>,
    error: Option<DecodeError>,
    /// Bytes left in the buffer at the end (an incomplete frame, or the frame that failed).
    leftover: usize,
}

fuzz_target!(|data: &[u8]| {
    let [mode, cut, stream @ ..] = data else {
        return;
    };
    let frame_max = pick_frame_max(*mode);

    let whole = decode_whole(frame_max, stream);
    let split = decode_split(frame_max, stream, *cut);
    assert_eq!(
        whole.frames.len(),
        split.frames.len(),
        "split feeding (cut {cut}) changed the number of frames"
    );
    for (a, b) in whole.frames.iter().zip(&split.frames) {
        assert!(
            same_frame(a, b),
            "split feeding (cut {cut}) changed a frame:\n{a:?}\n{b:?}"
        );
    }
    assert_eq!(whole.error, split.error, "split feeding changed the error");
    assert_eq!(
        whole.leftover, split.leftover,
        "split feeding changed what is left"
    );

    for frame in &whole.frames {
        round_trip(frame_max, frame);
    }
});

/// Typical values, the edges of the decoder's limits, and small values near the frame overhead.
fn pick_frame_max(mode: u8) -> u32 {
    match mode % 8 {
        0 => DEFAULT_FRAME_MAX,
        1 => 0, // no limit
        2 => 4096,
        3 => FRAME_OVERHEAD,
        4 => u32::MAX,
        5 => NON_BODY_FRAME_CEILING + 1,
        // 0..=31, then 8..=39: below, at and just above the 8 bytes of overhead.
        6 => u32::from(mode >> 3),
        _ => FRAME_OVERHEAD + u32::from(mode >> 3),
    }
}

/// Decodes frames until the buffer needs more bytes or an error stops the stream.
fn drain(
    decoder: &mut FrameDecoder,
    buf: &mut BytesMut,
    frames: &mut Vec<Frame>,
) -> Option<DecodeError> {
    loop {
        match decoder.decode(buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return None,
            Err(err) => return Some(err),
        }
    }
}

fn decode_whole(frame_max: u32, stream: &[u8]) -> Outcome {
    let mut decoder = FrameDecoder::new(frame_max);
    let mut buf = BytesMut::from(stream);
    let mut frames = Vec::new();
    let error = drain(&mut decoder, &mut buf, &mut frames);
    Outcome {
        frames,
        error,
        leftover: buf.len(),
    }
}

/// Feeds `stream` in pieces whose lengths come from `cut`: 0 means one byte at a time, otherwise
/// a pseudo-random sequence of lengths in 1..=cut seeded by `cut`.
fn decode_split(frame_max: u32, stream: &[u8], cut: u8) -> Outcome {
    let mut decoder = FrameDecoder::new(frame_max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = stream;
    let mut state = u32::from(cut) | 0x100;
    while !rest.is_empty() {
        let len = if cut == 0 {
            1
        } else {
            // xorshift32: cheap, deterministic, and never stuck at zero given a nonzero seed.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            1 + (state % u32::from(cut)) as usize
        };
        let (piece, after) = rest.split_at(len.min(rest.len()));
        rest = after;
        buf.extend_from_slice(piece);
        if let Some(error) = drain(&mut decoder, &mut buf, &mut frames) {
            return Outcome {
                frames,
                error: Some(error),
                leftover: buf.len() + rest.len(),
            };
        }
    }
    Outcome {
        frames,
        error: None,
        leftover: buf.len(),
    }
}

/// A decoded frame, re-encoded, must decode to an equal frame, consuming exactly its bytes, and
/// re-encode to the same bytes.
fn round_trip(frame_max: u32, frame: &Frame) {
    let mut encoded = BytesMut::new();
    encode_frame(frame, &mut encoded);
    let first = encoded.clone().freeze();

    let mut decoder = FrameDecoder::new(frame_max);
    let again = match decoder.decode(&mut encoded) {
        Ok(Some(again)) => again,
        other => panic!(
            "re-encoded frame does not decode: {other:?}\nframe: {frame:?}\nbytes: {first:?}"
        ),
    };
    assert!(
        encoded.is_empty(),
        "re-encoded frame decoded with {} bytes to spare\nframe: {frame:?}",
        encoded.len()
    );
    assert!(
        same_frame(frame, &again),
        "re-encoded frame decodes differently\nbefore: {frame:?}\nafter:  {again:?}"
    );

    let mut second = BytesMut::new();
    encode_frame(&again, &mut second);
    assert_eq!(
        first,
        second.freeze(),
        "re-encoding is not stable\nframe: {frame:?}"
    );
}

/// `PartialEq`, except that float field values holding NaN never equal themselves. Frames that
/// differ only there are the same if their encodings (which keep the float bits) are equal.
fn same_frame(a: &Frame, b: &Frame) -> bool {
    if a == b {
        return true;
    }
    let debug = format!("{a:?}");
    if !debug.contains("NaN") || debug != format!("{b:?}") {
        return false;
    }
    let (mut x, mut y) = (BytesMut::new(), BytesMut::new());
    encode_frame(a, &mut x);
    encode_frame(b, &mut y);
    x == y
}
