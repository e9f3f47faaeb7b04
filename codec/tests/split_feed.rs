//! The decoder yields the same frames however the byte stream is cut into reads.

mod support;

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use rmqd_codec::*;
use support::{any_basic_properties, any_method};

fn any_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<u16>(), any_method())
            .prop_map(|(channel, method)| Frame::Method { channel, method }),
        (any::<u16>(), any::<u64>(), any_basic_properties()).prop_map(
            |(channel, body_size, properties)| Frame::Header {
                channel,
                header: ContentHeader {
                    class_id: class_id::BASIC,
                    body_size,
                    properties
                },
            }
        ),
        (any::<u16>(), vec(any::<u8>(), 0..2000)).prop_map(|(channel, b)| Frame::Body {
            channel,
            payload: Bytes::from(b)
        }),
        Just(Frame::Heartbeat),
    ]
}

fn encode_all(frames: &[Frame]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for frame in frames {
        encode_frame(frame, &mut out);
    }
    out.to_vec()
}

/// Feeds `stream` in pieces ending at `cuts` (any order, any values), decoding after each piece.
fn decode_in_pieces(stream: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.push(stream.len());
    cuts.sort_unstable();
    let mut decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    for cut in cuts {
        buf.extend_from_slice(&stream[fed..cut]);
        fed = cut;
        while let Some(frame) = decoder.decode(&mut buf).expect("valid stream") {
            frames.push(frame);
        }
    }
    assert!(buf.is_empty());
    frames
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn any_split_decodes_to_the_same_frames(
        frames in vec(any_frame(), 1..12),
        cuts in vec(any::<usize>(), 0..40),
    ) {
        let stream = encode_all(&frames);
        prop_assert_eq!(decode_in_pieces(&stream, &cuts), frames);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn one_byte_at_a_time_decodes_to_the_same_frames(frames in vec(any_frame(), 1..6)) {
        let stream = encode_all(&frames);
        let every_byte: Vec<usize> = (0..stream.len()).collect();
        prop_assert_eq!(decode_in_pieces(&stream, &every_byte), frames);
    }
}
