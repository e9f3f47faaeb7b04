//! Bad input is an error carrying the right reply code; never a panic, a hang or a huge
//! allocation.

use bytes::BytesMut;
use proptest::prelude::*;
use rmqd_codec::*;

fn decode_one(bytes: &[u8]) -> Result<Option<Frame>, DecodeError> {
    FrameDecoder::default().decode(&mut BytesMut::from(bytes))
}

fn method_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![1, 0, 1];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame.push(0xCE);
    frame
}

#[test]
fn wrong_frame_end_is_501() {
    let mut frame = method_frame(&[0, 20, 0, 10, 0]);
    *frame.last_mut().unwrap() = 0;
    let err = decode_one(&frame).unwrap_err();
    assert_eq!(err, DecodeError::MissingFrameEnd(0));
    assert_eq!(err.reply_code(), reply_code::FRAME_ERROR);
}

#[test]
fn unknown_frame_type_is_501_as_soon_as_the_header_arrives() {
    let err = decode_one(&[9, 0, 0, 0, 0, 0, 0]).unwrap_err();
    assert_eq!(err, DecodeError::UnknownFrameType(9));
    assert_eq!(err.reply_code(), 501);
}

#[test]
fn frame_over_frame_max_is_501_before_it_is_buffered() {
    let size = DEFAULT_FRAME_MAX + 1;
    let mut header = vec![3, 0, 1];
    header.extend_from_slice(&size.to_be_bytes());
    let err = decode_one(&header).unwrap_err();
    assert!(matches!(err, DecodeError::FrameTooLarge { .. }), "{err:?}");
    assert_eq!(err.reply_code(), 501);
}

#[test]
fn body_frame_of_exactly_frame_max_is_accepted() {
    let mut out = BytesMut::new();
    let body = vec![0u8; (DEFAULT_FRAME_MAX - FRAME_OVERHEAD) as usize];
    encode_body(1, &body, DEFAULT_FRAME_MAX, &mut out);
    assert!(matches!(decode_one(&out), Ok(Some(Frame::Body { .. }))));
}

#[test]
fn payload_of_exactly_frame_max_passes_as_in_rabbitmq() {
    // RabbitMQ 3.10 compares the payload, not the whole frame, with frame_max.
    let mut header = vec![1, 0, 1];
    header.extend_from_slice(&DEFAULT_FRAME_MAX.to_be_bytes());
    assert_eq!(decode_one(&header), Ok(None), "waits for the rest");
}

#[test]
fn method_frames_are_held_to_frame_max_too() {
    let mut header = vec![1, 0, 1];
    header.extend_from_slice(&(DEFAULT_FRAME_MAX + 1).to_be_bytes());
    assert_eq!(decode_one(&header).unwrap_err().reply_code(), 501);
}

#[test]
fn heartbeat_on_a_channel_is_505_as_in_rabbitmq() {
    let err = decode_one(&[8, 0, 3, 0, 0, 0, 0, 0xCE]).unwrap_err();
    assert_eq!(err, DecodeError::HeartbeatOnChannel(3));
    assert_eq!(err.reply_code(), 505);
}

#[test]
fn unknown_method_is_503() {
    let err = decode_one(&method_frame(&[0, 60, 0, 99])).unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnknownMethod {
            class_id: 60,
            method_id: 99
        }
    );
    assert_eq!(err.reply_code(), reply_code::COMMAND_INVALID);
}

#[test]
fn truncated_arguments_are_501_naming_the_method() {
    // basic.qos wants 7 bytes of arguments; give it 2.
    let err = decode_one(&method_frame(&[0, 60, 0, 10, 0, 0])).unwrap_err();
    assert_eq!(err, DecodeError::Truncated { what: "basic.qos" });
    assert_eq!(err.reply_code(), 501);
    assert_eq!(
        err.reply_text(),
        "FRAME_ERROR - cannot decode basic.qos: it ends early"
    );
}

#[test]
fn trailing_bytes_after_the_arguments_are_501() {
    let err = decode_one(&method_frame(&[0, 20, 0, 41, 1])).unwrap_err();
    assert_eq!(
        err,
        DecodeError::TrailingBytes {
            what: "channel.close-ok",
            extra: 1
        }
    );
}

#[test]
fn content_header_for_another_class_is_505() {
    let mut frame = vec![2, 0, 1, 0, 0, 0, 14, 0, 10, 0, 0];
    frame.extend_from_slice(&[0; 8]);
    frame.extend_from_slice(&[0, 0, 0xCE]);
    let err = decode_one(&frame).unwrap_err();
    assert_eq!(err, DecodeError::ContentClass(10));
    assert_eq!(err.reply_code(), reply_code::UNEXPECTED_FRAME);
}

#[test]
fn property_flag_continuation_bit_is_502() {
    let mut frame = vec![2, 0, 1, 0, 0, 0, 14, 0, 60, 0, 0];
    frame.extend_from_slice(&[0; 8]);
    frame.extend_from_slice(&[0, 1, 0xCE]);
    assert_eq!(
        decode_one(&frame).unwrap_err().reply_code(),
        reply_code::SYNTAX_ERROR
    );
}

#[test]
fn table_claiming_4_gib_is_an_error_not_an_allocation() {
    // queue.declare with an arguments table whose length says 4 GiB.
    let mut payload = vec![0, 50, 0, 10, 0, 0, 0, 0];
    payload.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let err = decode_one(&method_frame(&payload)).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Truncated {
            what: "queue.declare"
        }
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    /// Arbitrary bytes: decoding ends (each frame consumes at least 8 bytes), and never panics.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut buf = BytesMut::from(&bytes[..]);
        let mut decoder = FrameDecoder::default();
        while let Ok(Some(_)) = decoder.decode(&mut buf) {}
    }

    /// A valid method frame with its payload bytes flipped: any result but a panic.
    #[test]
    fn corrupted_methods_never_panic(
        method in proptest::sample::select(vec![
            Method::QueueDeclare(QueueDeclare::default()),
            Method::BasicPublish(BasicPublish::default()),
            Method::ConnectionStartOk(ConnectionStartOk::default()),
        ]),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut out = BytesMut::new();
        encode_method(1, &method, &mut out);
        let len = out.len();
        for (at, byte) in flips {
            out[7 + at % (len - 8)] = byte;
        }
        let _ = FrameDecoder::default().decode(&mut out);
    }
}
