//! Everything the codec encodes decodes to the same value, for every method of the spec.

mod support;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rmqd_codec::*;
use support::{any_basic_properties, any_method, field_table};

fn decode_all(bytes: &[u8], frame_max: u32) -> Vec<Frame> {
    let mut buf = BytesMut::from(bytes);
    let mut decoder = FrameDecoder::new(frame_max);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf).expect("valid stream") {
        frames.push(frame);
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    frames
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_method_round_trips(channel in any::<u16>(), method in any_method()) {
        let mut out = BytesMut::new();
        encode_method(channel, &method, &mut out);
        let frames = decode_all(&out, DEFAULT_FRAME_MAX);
        prop_assert_eq!(frames, vec![Frame::Method { channel, method }]);
    }

    #[test]
    fn basic_properties_round_trip(
        channel in any::<u16>(),
        body_size in any::<u64>(),
        properties in any_basic_properties(),
    ) {
        let header = ContentHeader { class_id: class_id::BASIC, body_size, properties };
        let mut out = BytesMut::new();
        encode_content_header(channel, &header, &mut out);
        prop_assert_eq!(decode_all(&out, DEFAULT_FRAME_MAX), vec![Frame::Header { channel, header }]);
    }

    #[test]
    fn nested_tables_and_arrays_round_trip(table in field_table()) {
        let method = Method::QueueDeclare(QueueDeclare { arguments: table, ..Default::default() });
        let mut out = BytesMut::new();
        encode_method(1, &method, &mut out);
        prop_assert_eq!(decode_all(&out, DEFAULT_FRAME_MAX), vec![Frame::Method { channel: 1, method }]);
    }

    #[test]
    fn bodies_split_into_frames_no_larger_than_frame_max(
        body in proptest::collection::vec(any::<u8>(), 0..40_000),
        frame_max in 4096u32..20_000,
    ) {
        let mut out = BytesMut::new();
        encode_body(3, &body, frame_max, &mut out);
        let frames = decode_all(&out, frame_max);
        let mut joined = Vec::new();
        for frame in &frames {
            let Frame::Body { channel: 3, payload } = frame else {
                return Err(TestCaseError::fail(format!("not a body frame: {frame:?}")));
            };
            prop_assert!(payload.len() + FRAME_OVERHEAD as usize <= frame_max as usize);
            prop_assert!(!payload.is_empty());
            joined.extend_from_slice(payload);
        }
        prop_assert_eq!(joined, body);
    }
}

#[test]
fn a_whole_message_is_method_header_and_body_frames() {
    let publish = Method::BasicPublish(BasicPublish {
        exchange: ShortStr::from_static("amq.topic"),
        routing_key: ShortStr::from_static("a.b"),
        mandatory: true,
        ..Default::default()
    });
    let properties = BasicProperties {
        delivery_mode: Some(2),
        ..Default::default()
    };
    let body = vec![7u8; 300_000];
    let mut out = BytesMut::new();
    encode_content(5, &publish, &properties, &body, DEFAULT_FRAME_MAX, &mut out);
    let frames = decode_all(&out, DEFAULT_FRAME_MAX);
    assert_eq!(
        frames.len(),
        2 + 3,
        "300000 bytes take three 131064-byte body frames"
    );
    assert_eq!(
        frames[0],
        Frame::Method {
            channel: 5,
            method: publish
        }
    );
    assert_eq!(
        frames[1],
        Frame::Header {
            channel: 5,
            header: ContentHeader {
                class_id: 60,
                body_size: 300_000,
                properties
            }
        }
    );
    let body_len: usize = frames[2..]
        .iter()
        .map(|f| match f {
            Frame::Body { payload, .. } => payload.len(),
            other => panic!("expected a body frame, got {other:?}"),
        })
        .sum();
    assert_eq!(body_len, 300_000);
}

#[test]
fn empty_body_takes_no_body_frame() {
    let mut out = BytesMut::new();
    encode_body(1, &[], DEFAULT_FRAME_MAX, &mut out);
    assert!(out.is_empty());
}

#[test]
fn bits_pack_into_one_octet_lsb_first() {
    // queue.declare: ticket, queue, then passive durable exclusive auto-delete nowait bits.
    let method = Method::QueueDeclare(QueueDeclare {
        durable: true,
        auto_delete: true,
        ..Default::default()
    });
    let mut out = BytesMut::new();
    encode_method(0, &method, &mut out);
    // 7 header + class/method (4) + ticket (2) + empty name (1) then the bit octet.
    assert_eq!(out[7 + 4 + 2 + 1], 0b0000_1010);
}

#[test]
fn body_payload_is_a_slice_of_the_read_buffer() {
    let mut out = BytesMut::new();
    encode_body(1, b"hello", DEFAULT_FRAME_MAX, &mut out);
    let start = out.as_ptr() as usize;
    let mut decoder = FrameDecoder::default();
    let Some(Frame::Body { payload, .. }) = decoder.decode(&mut out).unwrap() else {
        panic!("expected a body frame");
    };
    assert_eq!(payload, Bytes::from_static(b"hello"));
    assert_eq!(payload.as_ptr() as usize, start + 7, "no copy was made");
}

#[test]
fn heartbeat_is_the_eight_bytes_rabbitmq_sends() {
    let mut out = BytesMut::new();
    encode_heartbeat(&mut out);
    assert_eq!(&out[..], &[8, 0, 0, 0, 0, 0, 0, 0xCE]);
}
