//! The records of the two logs, and their byte layouts. Topology records carry the AMQP method
//! that made the change, encoded by rmqd's codec, so replaying them reuses the code that
//! declared things in the first place. All integers are big-endian, as on the wire.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rmqd_codec::{DEFAULT_FRAME_MAX, Frame, FrameDecoder, Method, ShortStr, encode_method};
use serde::{Deserialize, Serialize};

use crate::auth::{HashingAlgorithm, PasswordHash, Permissions, User};
use crate::definitions::{Kept, PolicyDef};
use crate::message::{StoredMessage, StoredRef};

/// Kinds in `meta/`.
pub(super) mod meta_kind {
    pub const VHOST: u8 = 1;
    /// A method (exchange.declare/delete, queue.bind/unbind, exchange.bind/unbind) in a vhost.
    pub const METHOD: u8 = 2;
    /// queue.declare with the id its messages refer to.
    pub const QUEUE: u8 = 3;
    pub const QUEUE_DELETED: u8 = 4;
    /// A vhost and everything in it went; records naming it before this one are history.
    pub const VHOST_DELETED: u8 = 5;
    /// A policy set in a vhost, as a definitions file has it (JSON).
    pub const POLICY: u8 = 6;
    pub const POLICY_CLEARED: u8 = 7;
    /// A user as it now is: password hash, tags, permissions (JSON).
    pub const USER: u8 = 8;
    pub const USER_DELETED: u8 = 9;
    /// The default user and vhost were created; later starts leave them to the operator, as
    /// RabbitMQ creates them only on a node's first start.
    pub const INITIALISED: u8 = 10;
    /// Definitions kept for export though not acted on (JSON), whole.
    pub const KEPT: u8 = 11;
}

/// Kinds in `messages/`.
pub(super) mod message_kind {
    pub const PUBLISH: u8 = 1;
    pub const ACK: u8 = 2;
}

/// A record that does not parse: the log's checksum passed, so this is a bug or a foreign file,
/// and recovery skips the record rather than refusing to start.
#[derive(Debug, thiserror::Error)]
#[error("unreadable {0} record")]
pub(crate) struct Malformed(pub &'static str);

pub(super) enum MetaRecord {
    Vhost(ShortStr),
    Method {
        vhost: ShortStr,
        method: Method,
    },
    Queue {
        vhost: ShortStr,
        id: u64,
        method: Method,
    },
    QueueDeleted {
        id: u64,
    },
    VhostDeleted(ShortStr),
    Policy(PolicyDef),
    PolicyCleared {
        vhost: ShortStr,
        name: String,
    },
    User(UserRecord),
    UserDeleted(String),
    Initialised,
    Kept(Kept),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct UserRecord {
    pub name: String,
    /// Base64 of salt and digest, as in definitions files; empty for no password.
    pub password_hash: String,
    pub hashing_algorithm: String,
    pub tags: Vec<String>,
    /// vhost → [configure, write, read].
    pub permissions: BTreeMap<String, [String; 3]>,
}

impl UserRecord {
    pub fn from_user(user: &User) -> UserRecord {
        let hash = user.password_hash();
        UserRecord {
            name: user.name.clone(),
            password_hash: hash.to_base64(),
            hashing_algorithm: hash.algorithm().name().to_string(),
            tags: user.tags().to_vec(),
            permissions: user
                .permissions()
                .iter()
                .map(|(vhost, p)| {
                    (
                        vhost.clone(),
                        [p.configure.clone(), p.write.clone(), p.read.clone()],
                    )
                })
                .collect(),
        }
    }

    pub fn into_user(self) -> Result<User, String> {
        let algorithm = HashingAlgorithm::from_name(&self.hashing_algorithm)
            .ok_or_else(|| format!("unknown hashing algorithm {}", self.hashing_algorithm))?;
        let password = PasswordHash::from_base64(&self.password_hash, algorithm)?;
        let permissions = self
            .permissions
            .into_iter()
            .map(|(vhost, [c, w, r])| (vhost, Permissions::new(&c, &w, &r)))
            .collect();
        Ok(User::restored(&self.name, password, self.tags, permissions))
    }
}

pub(super) fn encode_json(value: &impl Serialize) -> Bytes {
    // Serialising plain structs of strings, numbers and maps cannot fail.
    serde_json::to_vec(value)
        .map(Bytes::from)
        .unwrap_or_default()
}

/// `[vhost short string][payload]`: a vhost record (empty payload), or something in a vhost.
pub(super) fn encode_in_vhost(vhost: &ShortStr, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + vhost.len() + payload.len());
    put_short(&mut out, vhost.as_bytes());
    out.put_slice(payload);
    out.freeze()
}

pub(super) fn encode_method_record(
    vhost: &ShortStr,
    queue_id: Option<u64>,
    method: &Method,
) -> Bytes {
    let mut out = BytesMut::new();
    put_short(&mut out, vhost.as_bytes());
    if let Some(id) = queue_id {
        out.put_u64(id);
    }
    encode_method(0, method, &mut out);
    out.freeze()
}

pub(super) fn encode_queue_deleted(id: u64) -> Bytes {
    Bytes::copy_from_slice(&id.to_be_bytes())
}

pub(super) fn decode_meta(kind: u8, mut payload: Bytes) -> Result<MetaRecord, Malformed> {
    let bad = || Malformed("metadata");
    match kind {
        meta_kind::VHOST => Ok(MetaRecord::Vhost(take_short(&mut payload).ok_or_else(bad)?)),
        meta_kind::METHOD => {
            let vhost = take_short(&mut payload).ok_or_else(bad)?;
            let method = take_method(payload).ok_or_else(bad)?;
            Ok(MetaRecord::Method { vhost, method })
        }
        meta_kind::QUEUE => {
            let vhost = take_short(&mut payload).ok_or_else(bad)?;
            let id = take_u64(&mut payload).ok_or_else(bad)?;
            let method = take_method(payload).ok_or_else(bad)?;
            Ok(MetaRecord::Queue { vhost, id, method })
        }
        meta_kind::VHOST_DELETED => Ok(MetaRecord::VhostDeleted(
            take_short(&mut payload).ok_or_else(bad)?,
        )),
        meta_kind::QUEUE_DELETED => Ok(MetaRecord::QueueDeleted {
            id: take_u64(&mut payload).ok_or_else(bad)?,
        }),
        meta_kind::POLICY => Ok(MetaRecord::Policy(
            serde_json::from_slice(&payload).map_err(|_| bad())?,
        )),
        meta_kind::POLICY_CLEARED => {
            let vhost = take_short(&mut payload).ok_or_else(bad)?;
            let name = String::from_utf8(payload.to_vec()).map_err(|_| bad())?;
            Ok(MetaRecord::PolicyCleared { vhost, name })
        }
        meta_kind::USER => Ok(MetaRecord::User(
            serde_json::from_slice(&payload).map_err(|_| bad())?,
        )),
        meta_kind::USER_DELETED => Ok(MetaRecord::UserDeleted(
            String::from_utf8(payload.to_vec()).map_err(|_| bad())?,
        )),
        meta_kind::INITIALISED => Ok(MetaRecord::Initialised),
        meta_kind::KEPT => Ok(MetaRecord::Kept(
            serde_json::from_slice(&payload).map_err(|_| bad())?,
        )),
        _ => Err(bad()),
    }
}

pub(super) enum MessageRecord {
    Publish {
        id: u64,
        queues: Vec<u64>,
        message: StoredMessage,
    },
    Ack {
        queue: u64,
        id: u64,
    },
}

/// `[id][queue count u16][queue ids][properties end u32][packed message and body]`.
pub(super) fn encode_publish(id: u64, queues: &[u64], stored: StoredRef<'_>) -> Bytes {
    let body = stored.large_body.map_or(0, |b| b.len());
    let mut out = BytesMut::with_capacity(14 + queues.len() * 8 + stored.packed.len() + body);
    out.put_u64(id);
    out.put_u16(queues.len() as u16);
    for queue in queues {
        out.put_u64(*queue);
    }
    out.put_u32(stored.properties_end);
    out.put_slice(stored.packed);
    if let Some(body) = stored.large_body {
        out.put_slice(body);
    }
    out.freeze()
}

pub(super) fn encode_ack(queue: u64, id: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(16);
    out.put_u64(queue);
    out.put_u64(id);
    out.freeze()
}

pub(super) fn decode_message(kind: u8, mut payload: Bytes) -> Result<MessageRecord, Malformed> {
    let bad = || Malformed("message");
    match kind {
        message_kind::PUBLISH => {
            let id = take_u64(&mut payload).ok_or_else(bad)?;
            if payload.remaining() < 2 {
                return Err(bad());
            }
            let count = usize::from(payload.get_u16());
            let mut queues = Vec::with_capacity(count.min(payload.remaining() / 8));
            for _ in 0..count {
                queues.push(take_u64(&mut payload).ok_or_else(bad)?);
            }
            if payload.remaining() < 4 {
                return Err(bad());
            }
            let properties_end = payload.get_u32();
            let message = StoredMessage::split(payload, properties_end).ok_or_else(bad)?;
            Ok(MessageRecord::Publish {
                id,
                queues,
                message,
            })
        }
        message_kind::ACK => {
            let queue = take_u64(&mut payload).ok_or_else(bad)?;
            let id = take_u64(&mut payload).ok_or_else(bad)?;
            Ok(MessageRecord::Ack { queue, id })
        }
        _ => Err(bad()),
    }
}

fn put_short(out: &mut BytesMut, s: &[u8]) {
    let s = &s[..s.len().min(ShortStr::MAX_LEN)];
    out.put_u8(s.len() as u8);
    out.put_slice(s);
}

fn take_short(payload: &mut Bytes) -> Option<ShortStr> {
    let len = usize::from(*payload.first()?);
    if payload.len() < 1 + len {
        return None;
    }
    payload.advance(1);
    ShortStr::new(payload.split_to(len)).ok()
}

fn take_u64(payload: &mut Bytes) -> Option<u64> {
    (payload.remaining() >= 8).then(|| payload.get_u64())
}

fn take_method(payload: Bytes) -> Option<Method> {
    let mut buf = BytesMut::from(&payload[..]);
    let mut decoder = FrameDecoder::new(DEFAULT_FRAME_MAX.max(payload.len() as u32 + 8));
    match decoder.decode(&mut buf) {
        Ok(Some(Frame::Method { method, .. })) if buf.is_empty() => Some(method),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmqd_codec::{FieldTable, FieldValue, QueueBind};

    #[test]
    fn method_records_round_trip() {
        let mut arguments = FieldTable::new();
        arguments.insert(
            ShortStr::from_static("x-match"),
            FieldValue::LongStr("any".into()),
        );
        let bind = Method::QueueBind(QueueBind {
            queue: ShortStr::from_static("q"),
            exchange: ShortStr::from_static("x"),
            routing_key: ShortStr::from_static("a.#"),
            arguments,
            ..Default::default()
        });
        let vhost = ShortStr::from_static("/");
        let record = encode_method_record(&vhost, Some(7), &bind);
        match decode_meta(meta_kind::QUEUE, record) {
            Ok(MetaRecord::Queue {
                vhost: v,
                id,
                method,
            }) => {
                assert_eq!(v, vhost);
                assert_eq!(id, 7);
                assert_eq!(method, bind);
            }
            _ => panic!("did not decode"),
        }
    }

    #[test]
    fn truncated_records_are_malformed_not_panics() {
        let ack = encode_ack(1, 2);
        for cut in 0..ack.len() {
            assert!(decode_message(message_kind::ACK, ack.slice(..cut)).is_err());
        }
        let record = encode_method_record(
            &ShortStr::from_static("/"),
            None,
            &Method::QueueBind(QueueBind::default()),
        );
        for cut in 0..record.len() {
            assert!(decode_meta(meta_kind::METHOD, record.slice(..cut)).is_err());
        }
    }
}
