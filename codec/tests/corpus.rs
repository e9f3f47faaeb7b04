//! Byte streams captured between real clients (pika, amqprs) and RabbitMQ 3.10 decode, and every
//! frame re-encodes to exactly the bytes it came from. See tests/corpus/README.md.

use std::path::Path;

use bytes::BytesMut;
use rmqd_codec::*;

fn round_trip(path: &Path) -> usize {
    let raw = std::fs::read(path).expect("corpus file is readable");
    let mut stream = &raw[..];
    let is_client = path.to_string_lossy().ends_with(".client.bin");
    if is_client {
        assert_eq!(
            check_protocol_header(&stream[..8]),
            ProtocolHeaderCheck::Accepted
        );
        stream = &stream[8..];
    }
    let mut buf = BytesMut::from(stream);
    let mut decoder = FrameDecoder::default();
    let mut reencoded = BytesMut::new();
    let mut frames = 0;
    while let Some(frame) = decoder
        .decode(&mut buf)
        .unwrap_or_else(|e| panic!("{}: frame {frames}: {e}", path.display()))
    {
        let before = reencoded.len();
        encode_frame(&frame, &mut reencoded);
        let original = &stream[before..reencoded.len().min(stream.len())];
        assert_eq!(
            &reencoded[before..],
            original,
            "{}: frame {frames} ({frame:?}) re-encodes differently",
            path.display()
        );
        frames += 1;
    }
    assert!(buf.is_empty(), "{}: trailing bytes", path.display());
    assert_eq!(&reencoded[..], stream);
    frames
}

#[test]
fn captured_streams_re_encode_byte_for_byte() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 18,
        "expected pika and amqprs captures in both directions"
    );
    let mut clients = std::collections::HashSet::new();
    for file in &files {
        let frames = round_trip(file);
        assert!(frames > 0, "{} holds no frame", file.display());
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        clients.insert(name.split('-').next().unwrap().to_string());
    }
    assert!(clients.contains("pika") && clients.contains("amqprs"));
}
