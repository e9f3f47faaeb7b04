//! The 8-byte header a client sends before any frame.

/// `AMQP` 0 0 9 1: the only protocol header rmqd accepts, and what it answers a wrong one with.
pub const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolHeaderCheck {
    /// Fewer than 8 bytes so far, and all of them match.
    Incomplete,
    /// AMQP 0-9-1: frames follow the 8 bytes.
    Accepted,
    /// Anything else (another AMQP version, HTTP, noise). The server writes [`PROTOCOL_HEADER`]
    /// so the client can see which version it speaks, then closes the socket.
    Rejected,
}

/// Checks the start of a connection. Rejects as soon as one byte differs, so a client speaking
/// the wrong protocol is not left waiting for the handshake timeout.
pub fn check_protocol_header(received: &[u8]) -> ProtocolHeaderCheck {
    let n = received.len().min(PROTOCOL_HEADER.len());
    if received[..n] != PROTOCOL_HEADER[..n] {
        ProtocolHeaderCheck::Rejected
    } else if n < PROTOCOL_HEADER.len() {
        ProtocolHeaderCheck::Incomplete
    } else {
        ProtocolHeaderCheck::Accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_0_9_1_and_waits_for_all_eight_bytes() {
        assert_eq!(
            check_protocol_header(b"AMQ"),
            ProtocolHeaderCheck::Incomplete
        );
        assert_eq!(
            check_protocol_header(&PROTOCOL_HEADER),
            ProtocolHeaderCheck::Accepted
        );
    }

    #[test]
    fn rejects_amqp_1_0_and_http() {
        assert_eq!(
            check_protocol_header(b"AMQP\x00\x01\x00\x00"),
            ProtocolHeaderCheck::Rejected
        );
        assert_eq!(check_protocol_header(b"GET"), ProtocolHeaderCheck::Rejected);
    }
}
