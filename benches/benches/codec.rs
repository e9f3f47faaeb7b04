//! Codec microbenchmarks: decoding and encoding a batch of publishes.
//!
//! A publish is three frames: `basic.publish`, a content header with typical properties
//! (content_type, delivery_mode 2, a small headers table), and one body frame. Each iteration
//! handles a batch of [`BATCH`] publishes, with 16 B and 4 KiB bodies.
//!
//! The same measurements are reported twice: the `frames` group in frames/s (divide by 3 for
//! publishes/s) and the `bytes` group in bytes/s of wire data (decimal units, so GB/s).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rmqd_codec::{
    BasicProperties, BasicPublish, DEFAULT_FRAME_MAX, FieldTable, FieldValue, FrameDecoder, Method,
    ShortStr, encode_content,
};

/// Publishes per iteration.
const BATCH: usize = 1000;
/// Frames per publish: method, content header, one body frame.
const FRAMES_PER_PUBLISH: usize = 3;
const BODY_SIZES: [(usize, &str); 2] = [(16, "16B"), (4096, "4KiB")];

struct Publish {
    method: Method,
    properties: BasicProperties,
    body: Bytes,
}

fn publish(body_size: usize, n: usize) -> Publish {
    let mut headers = FieldTable::new();
    headers.insert(
        ShortStr::from_static("x-trace-id"),
        FieldValue::from(format!("4bf92f3577b34da6a3ce929d0e0e{n:04}").as_str()),
    );
    headers.insert(ShortStr::from_static("retry-count"), FieldValue::I32(0));
    headers.insert(
        ShortStr::from_static("source"),
        FieldValue::from("orders-service"),
    );
    Publish {
        method: Method::BasicPublish(BasicPublish {
            ticket: 0,
            exchange: ShortStr::from_static("orders"),
            routing_key: ShortStr::from_static("orders.created.eu-west"),
            mandatory: false,
            immediate: false,
        }),
        properties: BasicProperties {
            content_type: Some(ShortStr::from_static("application/json")),
            delivery_mode: Some(2),
            headers: Some(headers),
            ..BasicProperties::default()
        },
        body: Bytes::from(vec![b'x'; body_size]),
    }
}

fn encode_batch(publishes: &[Publish], out: &mut BytesMut) {
    for p in publishes {
        encode_content(1, &p.method, &p.properties, &p.body, DEFAULT_FRAME_MAX, out);
    }
}

/// Decodes every frame in `buf`, returning how many there were.
fn decode_all(decoder: &mut FrameDecoder, buf: &mut BytesMut) -> usize {
    let mut frames = 0;
    while let Some(frame) = decoder.decode(buf).expect("benchmark input decodes") {
        black_box(frame);
        frames += 1;
    }
    frames
}

struct Case {
    label: &'static str,
    publishes: Vec<Publish>,
    /// The batch, encoded.
    wire: Bytes,
}

fn cases() -> Vec<Case> {
    BODY_SIZES
        .iter()
        .map(|&(body_size, label)| {
            let publishes: Vec<Publish> = (0..BATCH).map(|n| publish(body_size, n)).collect();
            let mut out = BytesMut::new();
            encode_batch(&publishes, &mut out);
            let wire = out.freeze();
            let mut check = BytesMut::from(&wire[..]);
            assert_eq!(
                decode_all(&mut FrameDecoder::default(), &mut check),
                BATCH * FRAMES_PER_PUBLISH
            );
            assert!(check.is_empty());
            Case {
                label,
                publishes,
                wire,
            }
        })
        .collect()
}

fn bench_group(c: &mut Criterion, group_name: &str, throughput: impl Fn(&Case) -> Throughput) {
    let mut group = c.benchmark_group(group_name);
    for case in cases() {
        group.throughput(throughput(&case));

        // The input is copied into a fresh BytesMut outside the timed routine; the emptied
        // buffer is returned so that dropping it is not timed either.
        group.bench_function(BenchmarkId::new("decode", case.label), |b| {
            let mut decoder = FrameDecoder::default();
            b.iter_batched(
                || BytesMut::from(&case.wire[..]),
                |mut buf| {
                    black_box(decode_all(&mut decoder, &mut buf));
                    buf
                },
                BatchSize::LargeInput,
            )
        });

        group.bench_function(BenchmarkId::new("encode", case.label), |b| {
            let mut out = BytesMut::with_capacity(case.wire.len());
            b.iter(|| {
                out.clear();
                encode_batch(black_box(&case.publishes), &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

fn codec(c: &mut Criterion) {
    bench_group(c, "publish_frames", |_| {
        Throughput::Elements((BATCH * FRAMES_PER_PUBLISH) as u64)
    });
    bench_group(c, "publish_bytes", |case| {
        Throughput::BytesDecimal(case.wire.len() as u64)
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
