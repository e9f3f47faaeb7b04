//! Names for connections and channels in the shape of RabbitMQ's Erlang pids,
//! `<rmqd@host.CREATION.CONNECTION.CHANNEL>`, so that scripts which take a pid from
//! `list_connections` and give it to `close_connection` work unchanged. CREATION is the
//! broker's start time: a pid from an earlier run names no connection of this one.

use crate::broker::Broker;
use crate::connection::ConnectionId;

use super::node_name;

pub(crate) fn connection(broker: &Broker, id: ConnectionId) -> String {
    channel(broker, id, 0)
}

pub(crate) fn channel(broker: &Broker, id: ConnectionId, channel: u16) -> String {
    format!(
        "<{}.{}.{id}.{channel}>",
        node_name(),
        broker.connections.creation()
    )
}

/// Why a text is no pid.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InvalidPid;

/// The connection a pid names, if it names one of this broker's: `Ok(None)` for a
/// well-formed pid of another node, run or channel.
pub(crate) fn parse_connection(
    broker: &Broker,
    text: &str,
) -> Result<Option<ConnectionId>, InvalidPid> {
    let inner = text
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .ok_or(InvalidPid)?;
    let mut parts = inner.rsplitn(4, '.');
    let (Some(channel), Some(id), Some(creation), Some(node)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(InvalidPid);
    };
    let number = |s: &str| s.parse::<u64>().map_err(|_| InvalidPid);
    let (channel, id, creation) = (number(channel)?, number(id)?, number(creation)?);
    let ours = node == node_name() && creation == broker.connections.creation() && channel == 0;
    Ok(ours.then_some(id))
}

#[cfg(test)]
mod tests {
    use super::super::testing::broker;
    use super::*;

    #[test]
    fn a_connection_pid_reads_back_as_its_connection() {
        let broker = broker();
        let pid = connection(&broker, 42);
        assert!(
            pid.starts_with("<rmqd@") && pid.ends_with(".42.0>"),
            "{pid}"
        );
        assert_eq!(parse_connection(&broker, &pid), Ok(Some(42)));
    }

    #[test]
    fn channel_pids_and_other_nodes_name_no_connection() {
        let broker = broker();
        assert_eq!(
            parse_connection(&broker, &channel(&broker, 42, 1)),
            Ok(None)
        );
        assert_eq!(
            parse_connection(&broker, "<rabbit@elsewhere.1795338852.887.0>"),
            Ok(None)
        );
    }

    #[test]
    fn text_in_another_shape_is_no_pid() {
        let broker = broker();
        for text in ["garbage", "<1.2.3>", "<rmqd@h.x.1.0>", "rmqd@h.1.1.0"] {
            assert_eq!(parse_connection(&broker, text), Err(InvalidPid), "{text}");
        }
    }
}
