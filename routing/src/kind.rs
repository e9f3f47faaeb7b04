//! The four exchange types every RabbitMQ node has.

/// How an exchange picks the destinations of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeKind {
    /// The kind `exchange.declare` names, matched byte for byte as RabbitMQ does (so "Direct" is
    /// not "direct"); `None` for plugin types such as `x-consistent-hash` that rmqd lacks.
    pub fn from_name(name: &[u8]) -> Option<ExchangeKind> {
        match name {
            b"direct" => Some(ExchangeKind::Direct),
            b"fanout" => Some(ExchangeKind::Fanout),
            b"topic" => Some(ExchangeKind::Topic),
            b"headers" => Some(ExchangeKind::Headers),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ExchangeKind; 4] = [
        ExchangeKind::Direct,
        ExchangeKind::Fanout,
        ExchangeKind::Topic,
        ExchangeKind::Headers,
    ];

    #[test]
    fn names_round_trip() {
        for kind in ALL {
            assert_eq!(ExchangeKind::from_name(kind.name().as_bytes()), Some(kind));
        }
    }

    #[test]
    fn other_names_are_unknown() {
        for name in [
            &b"Direct"[..],
            b"direct ",
            b"",
            b"x-consistent-hash",
            b"x-delayed-message",
            b"match",
        ] {
            assert_eq!(ExchangeKind::from_name(name), None);
        }
    }
}
