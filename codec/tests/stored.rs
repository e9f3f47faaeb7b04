//! Stored content (properties encoded once at publish) goes on the wire exactly as content
//! encoded from decoded properties would.

mod support;

use bytes::BytesMut;
use proptest::prelude::*;
use rmqd_codec::*;
use support::{any_basic_properties, short_str};

#[derive(Debug, Clone)]
enum Kind {
    Deliver(ShortStr, bool),
    GetOk(bool, u32),
    Return(u16, ShortStr),
}

fn any_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        (short_str(), any::<bool>()).prop_map(|(tag, r)| Kind::Deliver(tag, r)),
        (any::<bool>(), any::<u32>()).prop_map(|(r, n)| Kind::GetOk(r, n)),
        (any::<u16>(), short_str()).prop_map(|(code, text)| Kind::Return(code, text)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn stored_content_matches_decoded_content(
        channel in any::<u16>(),
        kind in any_kind(),
        tag in any::<u64>(),
        exchange in short_str(),
        routing_key in short_str(),
        properties in any_basic_properties(),
        body in proptest::collection::vec(any::<u8>(), 0..600),
        frame_max in prop_oneof![Just(0u32), 9u32..300, Just(DEFAULT_FRAME_MAX)],
    ) {
        let (method, stored) = match &kind {
            Kind::Deliver(consumer_tag, redelivered) => (
                Method::BasicDeliver(BasicDeliver {
                    consumer_tag: consumer_tag.clone(),
                    delivery_tag: tag,
                    redelivered: *redelivered,
                    exchange: exchange.clone(),
                    routing_key: routing_key.clone(),
                }),
                ContentMethod::Deliver {
                    consumer_tag: consumer_tag.as_bytes(),
                    delivery_tag: tag,
                    redelivered: *redelivered,
                    exchange: exchange.as_bytes(),
                    routing_key: routing_key.as_bytes(),
                },
            ),
            Kind::GetOk(redelivered, count) => (
                Method::BasicGetOk(BasicGetOk {
                    delivery_tag: tag,
                    redelivered: *redelivered,
                    exchange: exchange.clone(),
                    routing_key: routing_key.clone(),
                    message_count: *count,
                }),
                ContentMethod::GetOk {
                    delivery_tag: tag,
                    redelivered: *redelivered,
                    exchange: exchange.as_bytes(),
                    routing_key: routing_key.as_bytes(),
                    message_count: *count,
                },
            ),
            Kind::Return(code, text) => (
                Method::BasicReturn(BasicReturn {
                    reply_code: *code,
                    reply_text: text.clone(),
                    exchange: exchange.clone(),
                    routing_key: routing_key.clone(),
                }),
                ContentMethod::Return {
                    reply_code: *code,
                    reply_text: text.as_bytes(),
                    exchange: exchange.as_bytes(),
                    routing_key: routing_key.as_bytes(),
                },
            ),
        };
        let mut expected = BytesMut::new();
        encode_content(channel, &method, &properties, &body, frame_max, &mut expected);

        let mut encoded_properties = BytesMut::new();
        encode_properties(&properties, &mut encoded_properties);
        let encoded_properties = encoded_properties.freeze();
        prop_assert_eq!(&decode_properties(&encoded_properties).unwrap(), &properties);

        let mut actual = BytesMut::new();
        encode_stored_content(channel, &stored, &encoded_properties, &body, frame_max, &mut actual);
        prop_assert_eq!(actual, expected);
    }
}

#[test]
fn properties_with_trailing_bytes_are_rejected() {
    let mut encoded = BytesMut::new();
    encode_properties(&BasicProperties::default(), &mut encoded);
    encoded.extend_from_slice(b"junk");
    let err = decode_properties(&encoded.freeze()).unwrap_err();
    assert_eq!(err.reply_code(), reply_code::FRAME_ERROR);
}
