//! What the logs held at startup, gathered while they are read: topology changes in order, and
//! every persistent message some durable queue still holds.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use rmqd_codec::Method;
use tracing::warn;

use super::DiskStore;
use super::records::{self, MessageRecord, MetaRecord};
use super::space::SegmentBook;
use crate::broker::Broker;
use crate::error::AmqpError;
use crate::message::{Message, StoredMessage};
use crate::queue::Queue;
use crate::store::{Position, Record};
use crate::vhost::{Destination, ExchangeSpec, QueueSpec, Vhost};

pub(crate) struct Recovered {
    pub(super) meta: Vec<MetaRecord>,
    /// By message id, which is publish order.
    pub(super) messages: BTreeMap<u64, Pending>,
    pub(super) max_message_id: u64,
    pub(super) max_queue_id: u64,
    /// Where each message's publish record is, and which segments acks point into.
    pub(super) segments: SegmentBook,
    pub(super) records: u64,
    /// Bytes of bodies recovery may hold; beyond them, only positions.
    body_budget: usize,
    bodies_kept: usize,
}

impl Recovered {
    pub(super) fn new(queue_memory_limit: usize) -> Recovered {
        Recovered {
            meta: Vec::new(),
            messages: BTreeMap::new(),
            max_message_id: 0,
            max_queue_id: 0,
            segments: SegmentBook::default(),
            records: 0,
            body_budget: queue_memory_limit,
            bodies_kept: 0,
        }
    }

    /// Topology records replayed.
    pub(crate) fn meta_records(&self) -> usize {
        self.meta.len()
    }

    /// Records read from both logs.
    pub(crate) fn records(&self) -> u64 {
        self.records
    }
}

pub(super) struct Pending {
    /// `None` once recovery has kept as many bodies as the queues will hold in memory: the
    /// rest stay on disk and are read back when their turn comes.
    pub message: Option<StoredMessage>,
    pub at: Position,
    /// The queues that have not acked it yet.
    pub queues: Vec<u64>,
}

impl Recovered {
    pub(super) fn add_meta(&mut self, record: Record) {
        self.records += 1;
        match records::decode_meta(record.kind, record.payload) {
            Ok(meta) => {
                if let MetaRecord::Queue { id, .. } = &meta {
                    self.max_queue_id = self.max_queue_id.max(*id);
                }
                self.meta.push(meta);
            }
            Err(err) => warn!(
                segment = record.position.segment,
                offset = record.position.offset,
                "skipping {err}"
            ),
        }
    }

    pub(super) fn add_message(&mut self, record: Record) {
        self.records += 1;
        match records::decode_message(record.kind, record.payload) {
            Ok(MessageRecord::Publish {
                id,
                queues,
                message,
            }) => {
                self.max_message_id = self.max_message_id.max(id);
                self.segments.note_publish(id, record.position.segment);
                let size = message.size();
                let message = (self.bodies_kept + size <= self.body_budget).then(|| {
                    self.bodies_kept += size;
                    message
                });
                let at = record.position;
                self.messages.insert(
                    id,
                    Pending {
                        message,
                        at,
                        queues,
                    },
                );
            }
            Ok(MessageRecord::Ack { queue, id }) => {
                self.segments.note_ack(id, record.position.segment);
                if let Some(pending) = self.messages.get_mut(&id) {
                    pending.queues.retain(|q| *q != queue);
                    if pending.queues.is_empty()
                        && let Some(gone) = self.messages.remove(&id)
                    {
                        self.bodies_kept -= gone.message.map_or(0, |m| m.size());
                    }
                }
            }
            Err(err) => warn!(
                segment = record.position.segment,
                offset = record.position.offset,
                "skipping {err}"
            ),
        }
    }
}

/// Rebuilds durable vhosts, exchanges, queues and bindings by replaying the topology log
/// through the broker's own declare and bind code, then puts every recovered message back in
/// its queues in publish order, marked redelivered (it may have been delivered before the
/// crash). Returns (queues, messages) restored.
pub(crate) fn rebuild(
    broker: &Broker,
    store: &Arc<DiskStore>,
    recovered: Recovered,
) -> (usize, usize) {
    let now = Instant::now();
    let mut queues: HashMap<u64, Arc<Queue>> = HashMap::new();
    for record in recovered.meta {
        match record {
            MetaRecord::Vhost(name) => {
                broker.add_vhost(&name.to_string_lossy());
            }
            MetaRecord::VhostDeleted(name) => {
                if let Some(vhost) = broker.vhost(name.as_bytes()) {
                    queues.retain(|_, queue| queue.vhost != vhost.name);
                    broker.forget_vhost(&vhost);
                }
            }
            MetaRecord::Queue { vhost, id, method } => {
                let Method::QueueDeclare(declare) = method else {
                    continue;
                };
                // Records of a vhost deleted earlier in the log (a connection still open on it
                // when it went) are history too.
                let Some(vhost) = broker.vhost(vhost.as_bytes()) else {
                    continue;
                };
                let spec = QueueSpec {
                    name: &declare.queue,
                    passive: false,
                    durable: true,
                    exclusive: false,
                    auto_delete: declare.auto_delete,
                    arguments: &declare.arguments,
                };
                match vhost.recover_queue(&spec, Arc::clone(store), id, now) {
                    Ok(queue) => {
                        queues.insert(id, queue);
                    }
                    Err(err) => {
                        warn!(queue = %declare.queue, "cannot recover queue: {}", err.detail)
                    }
                }
            }
            MetaRecord::QueueDeleted { id } => {
                if let Some(queue) = queues.remove(&id)
                    && let Some(vhost) = broker.vhost(queue.vhost.as_bytes())
                {
                    vhost.remove_queue_if_same(&queue);
                }
            }
            MetaRecord::Policy(def) => {
                let Some(vhost) = broker.vhost(def.vhost.as_bytes()) else {
                    continue;
                };
                match def.to_policy() {
                    Ok(policy) => vhost.set_policy(policy),
                    Err(err) => {
                        warn!(vhost = %def.vhost, policy = %def.name, "cannot recover policy: {err}")
                    }
                }
            }
            MetaRecord::PolicyCleared { vhost, name } => {
                if let Some(vhost) = broker.vhost(vhost.as_bytes()) {
                    vhost.clear_policy(&name);
                }
            }
            MetaRecord::User(record) => {
                let name = record.name.clone();
                match record.into_user() {
                    Ok(user) => broker.users.restore(user),
                    Err(err) => warn!(user = %name, "cannot recover user: {err}"),
                }
            }
            // The store records nothing while it is replayed, so the usual calls do.
            MetaRecord::UserDeleted(name) => {
                let _ = broker.users.delete(&name);
            }
            MetaRecord::Initialised => broker.mark_initialised(),
            MetaRecord::Kept(kept) => broker.change_kept(|k| *k = kept),
            MetaRecord::Method { vhost, method } => {
                let Some(vhost) = broker.vhost(vhost.as_bytes()) else {
                    continue;
                };
                if let Err(err) = replay(&vhost, method) {
                    warn!(vhost = %vhost.name, "cannot replay a topology change: {}", err.detail);
                }
            }
        }
    }
    let mut restored = 0;
    for (id, pending) in recovered.messages {
        let holders = pending.queues.iter().filter_map(|q| queues.get(q));
        match pending.message {
            Some(stored) => {
                let Some(message) = Message::recovered(stored, id, &broker.memory) else {
                    warn!(id, "skipping an unreadable stored message");
                    continue;
                };
                let message = Arc::new(message);
                for queue in holders {
                    queue.recover(Arc::clone(&message), pending.at, now);
                    store.hold_recovered(id);
                    restored += 1;
                }
            }
            None => {
                for queue in holders {
                    queue.recover_on_disk(id, pending.at, now);
                    store.hold_recovered(id);
                    restored += 1;
                }
            }
        }
    }
    (queues.len(), restored)
}

fn replay(vhost: &Vhost, method: Method) -> Result<(), AmqpError> {
    match method {
        Method::ExchangeDeclare(m) => vhost.declare_exchange(&ExchangeSpec {
            name: &m.exchange,
            kind: &m.kind,
            passive: false,
            durable: m.durable,
            auto_delete: m.auto_delete,
            internal: m.internal,
            arguments: &m.arguments,
        }),
        Method::ExchangeDelete(m) => vhost.delete_exchange(&m.exchange, false),
        Method::QueueBind(m) => vhost.bind_queue(
            &m.queue,
            &m.exchange,
            &m.routing_key,
            &m.arguments,
            RECOVERY,
        ),
        Method::QueueUnbind(m) => vhost.unbind(
            &m.exchange,
            Destination::Queue(m.queue),
            &m.routing_key,
            &m.arguments,
        ),
        Method::ExchangeBind(m) => {
            vhost.bind_exchange(&m.destination, &m.source, &m.routing_key, &m.arguments)
        }
        Method::ExchangeUnbind(m) => vhost.unbind(
            &m.source,
            Destination::Exchange(m.destination),
            &m.routing_key,
            &m.arguments,
        ),
        _ => Ok(()),
    }
}

/// The connection id recovery acts as; no client connection has it.
const RECOVERY: u64 = 0;
