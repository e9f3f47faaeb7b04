//! The channel state machine: methods by AMQP class (one file each), content assembly, and the
//! channel's deliveries, unacked messages, consumers, confirms and transaction.

mod access;
mod basic;
mod content;
mod exchange;
mod queue;
mod tx;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rmqd_codec::{ChannelClose, Frame, Method, ShortStr, encode_method};

use crate::connection::Session;
use crate::connections::{ChannelCounts, ChannelStats};
use crate::error::AmqpError;
use crate::queue::{Credit, Entry, Queue};
use crate::vhost::Vhost;
use access::AccessCache;
use content::Assembly;
use tx::{Confirms, Transaction};

/// What a channel handler may touch besides the channel itself.
pub(crate) struct Ctx<'a> {
    pub session: &'a mut Session,
    pub out: &'a mut BytesMut,
    pub now: Instant,
}

impl Ctx<'_> {
    pub fn send(&mut self, channel: u16, method: impl Into<Method>) {
        encode_method(channel, &method.into(), self.out);
    }

    /// Every channel method needs the vhost, which exists once the connection is open.
    pub fn vhost(&self) -> Arc<Vhost> {
        match &self.session.vhost {
            Some(v) => Arc::clone(v),
            None => unreachable!("channels exist only on open connections"),
        }
    }
}

pub(crate) struct ChannelConsumer {
    pub queue: Arc<Queue>,
    pub credit: Arc<Credit>,
}

/// A delivered message not yet acked.
pub(crate) struct Unacked {
    pub tag: u64,
    pub queue: Arc<Queue>,
    pub entry: Entry,
    /// None for basic.get.
    pub consumer_tag: Option<ShortStr>,
    /// When it went out: it must be acked within the consumer timeout.
    pub delivered_at: Instant,
}

pub(crate) struct Channel {
    id: u16,
    closing: bool,
    /// Where `list_channels` reads this channel's counts.
    stats: Arc<ChannelStats>,
    /// basic.qos with global=true: the prefetch shared by all consumers of this channel.
    channel_credit: Arc<Credit>,
    /// basic.qos with global=false: the prefetch for consumers created after it.
    consumer_prefetch: u16,
    consumers: HashMap<ShortStr, ChannelConsumer>,
    /// In delivery-tag order, which is delivery order.
    unacked: VecDeque<Unacked>,
    next_delivery_tag: u64,
    /// The queue the last queue.declare named, for methods that leave the queue name empty.
    last_queue: Option<ShortStr>,
    assembly: Option<Assembly>,
    confirms: Option<Confirms>,
    tx: Option<Transaction>,
    route_buf: Vec<Arc<Queue>>,
    /// Reused to encode each published message's properties before packing it.
    pack_buf: BytesMut,
    /// Reused for the ids of the durable queues a persistent message goes to.
    durable_buf: Vec<u64>,
    /// What the connection's user was lately allowed to do here.
    access: AccessCache,
}

impl Channel {
    pub fn new(id: u16) -> Channel {
        Channel {
            id,
            closing: false,
            stats: Arc::default(),
            channel_credit: Arc::new(Credit::new(0)),
            consumer_prefetch: 0,
            consumers: HashMap::new(),
            unacked: VecDeque::new(),
            next_delivery_tag: 1,
            last_queue: None,
            assembly: None,
            confirms: None,
            tx: None,
            route_buf: Vec::new(),
            pack_buf: BytesMut::new(),
            durable_buf: Vec::new(),
            access: AccessCache::default(),
        }
    }

    pub fn is_closing(&self) -> bool {
        self.closing
    }

    pub fn handle_frame(&mut self, frame: Frame, ctx: &mut Ctx<'_>) -> Result<(), AmqpError> {
        match frame {
            Frame::Method { method, .. } => {
                if let Some(assembly) = &self.assembly {
                    return Err(assembly.interrupted());
                }
                let (class_id, method_id) = (method.class_id(), method.method_id());
                self.handle_method(method, ctx)
                    .map_err(|e| e.during(class_id, method_id))
            }
            Frame::Header { header, .. } => {
                let complete = content::on_header(&mut self.assembly, header, ctx)?;
                match complete {
                    Some(message) => self.publish(message, ctx),
                    None => Ok(()),
                }
            }
            Frame::Body { payload, .. } => match content::on_body(&mut self.assembly, payload)? {
                Some(message) => self.publish(message, ctx),
                None => Ok(()),
            },
            Frame::Heartbeat => Ok(()),
        }
    }

    fn handle_method(&mut self, method: Method, ctx: &mut Ctx<'_>) -> Result<(), AmqpError> {
        match method {
            // RabbitMQ refuses to pause deliveries this way; clients use basic.qos instead.
            Method::ChannelFlow(flow) if !flow.active => {
                Err(AmqpError::not_implemented("active=false"))
            }
            Method::ChannelFlow(_) => {
                ctx.send(self.id, rmqd_codec::ChannelFlowOk { active: true });
                Ok(())
            }
            Method::ChannelFlowOk(_) => Ok(()),
            Method::AccessRequest(_) => {
                ctx.send(self.id, rmqd_codec::AccessRequestOk { ticket: 1 });
                Ok(())
            }
            Method::ExchangeDeclare(m) => self.exchange_declare(m, ctx),
            Method::ExchangeDelete(m) => self.exchange_delete(m, ctx),
            Method::ExchangeBind(m) => self.exchange_bind(m, ctx),
            Method::ExchangeUnbind(m) => self.exchange_unbind(m, ctx),
            Method::QueueDeclare(m) => self.queue_declare(m, ctx),
            Method::QueueBind(m) => self.queue_bind(m, ctx),
            Method::QueueUnbind(m) => self.queue_unbind(m, ctx),
            Method::QueuePurge(m) => self.queue_purge(m, ctx),
            Method::QueueDelete(m) => self.queue_delete(m, ctx),
            Method::BasicQos(m) => self.basic_qos(m, ctx),
            Method::BasicConsume(m) => self.basic_consume(m, ctx),
            Method::BasicCancel(m) => self.basic_cancel(m, ctx),
            Method::BasicPublish(m) if m.immediate => {
                Err(AmqpError::not_implemented("immediate=true"))
            }
            Method::BasicPublish(m) => {
                self.assembly = Some(Assembly::new(m));
                Ok(())
            }
            Method::BasicGet(m) => self.basic_get(m, ctx),
            Method::BasicAck(m) => self.basic_ack(m.delivery_tag, m.multiple, ctx),
            Method::BasicNack(m) => self.basic_reject(m.delivery_tag, m.multiple, m.requeue, ctx),
            Method::BasicReject(m) => self.basic_reject(m.delivery_tag, false, m.requeue, ctx),
            Method::BasicRecover(m) => {
                self.basic_recover(m.requeue, ctx)?;
                ctx.send(self.id, rmqd_codec::BasicRecoverOk {});
                Ok(())
            }
            Method::BasicRecoverAsync(m) => self.basic_recover(m.requeue, ctx),
            Method::ConfirmSelect(m) => self.confirm_select(m.nowait, ctx),
            Method::TxSelect(_) => self.tx_select(ctx),
            Method::TxCommit(_) => self.tx_commit(ctx),
            Method::TxRollback(_) => self.tx_rollback(ctx),
            other => Err(AmqpError::command_invalid(format!(
                "unexpected method {} from the client",
                other.name()
            ))),
        }
    }

    /// Closes the channel for a channel error: send channel.close, give back its messages, and
    /// ignore everything until channel.close-ok.
    pub fn close_with(&mut self, err: AmqpError, ctx: &mut Ctx<'_>) {
        self.release(ctx.session, ctx.now);
        self.closing = true;
        ctx.send(
            self.id,
            ChannelClose {
                reply_code: err.code,
                reply_text: ShortStr::truncating(err.reply_text()),
                class_id: err.class_id,
                method_id: err.method_id,
            },
        );
    }

    /// Gives back everything this channel holds: unacked messages go back to their queues,
    /// consumers are cancelled (deleting auto-delete queues that lose their last one).
    pub fn release(&mut self, session: &mut Session, now: Instant) {
        self.assembly = None;
        let tags: Vec<ShortStr> = self.consumers.keys().cloned().collect();
        for tag in tags {
            self.remove_consumer(&tag, session, now);
        }
        let mut unacked: Vec<Unacked> = self.unacked.drain(..).collect();
        // Acks and rejects of an uncommitted transaction never happened: those messages are
        // still unacked and go back too.
        if let Some(tx) = self.tx.take() {
            unacked.extend(tx.acks.into_iter().flat_map(|(settled, _)| settled));
        }
        self.requeue_unacked(unacked, now);
    }

    fn requeue_unacked(&self, unacked: Vec<Unacked>, now: Instant) {
        // Group by queue so each queue is locked once and dispatches once.
        let mut by_queue: Vec<(Arc<Queue>, Vec<Entry>)> = Vec::new();
        for u in unacked {
            self.release_credit(&u);
            match by_queue.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &u.queue)) {
                Some((_, entries)) => entries.push(u.entry),
                None => by_queue.push((u.queue, vec![u.entry])),
            }
        }
        for (queue, entries) in by_queue {
            queue.requeue(entries, now);
        }
        self.kick_for_channel_credit(now);
    }

    /// Channel-wide prefetch freed by an ack may let any of the channel's consumers go on, not
    /// only those of the acked message's queue.
    fn kick_for_channel_credit(&self, now: Instant) {
        if self.channel_credit.is_limited() {
            self.kick_queues(now);
        }
    }

    fn release_credit(&self, u: &Unacked) {
        if let Some(tag) = &u.consumer_tag {
            if let Some(c) = self.consumers.get(tag) {
                c.credit.release(1);
            }
            self.channel_credit.release(1);
        }
    }

    /// Asks every queue we consume from to dispatch again (credit or room came back).
    pub fn kick_queues(&self, now: Instant) {
        for c in self.consumers.values() {
            c.queue.kick(now);
        }
    }

    /// When the oldest delivery still unacked outlives `timeout` (RabbitMQ's
    /// `consumer_timeout`); deliveries are kept in the order they went out.
    pub fn ack_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.closing {
            return None;
        }
        self.unacked.front().map(|u| u.delivered_at + timeout)
    }

    pub fn flush_confirms(&mut self, id: u16, out: &mut BytesMut) {
        if let Some(confirms) = &mut self.confirms {
            confirms.flush(id, out);
        }
    }
}

/// What `list_channels` shows of a channel, published at the end of each batch.
impl Channel {
    pub fn stats(&self) -> &Arc<ChannelStats> {
        &self.stats
    }

    pub fn publish_stats(&self) {
        self.stats.store(ChannelCounts {
            consumers: self.consumers.len() as u32,
            unacked: self.unacked.len() as u32,
            prefetch: self.consumer_prefetch,
            global_prefetch: self.channel_credit.limit(),
            confirm: self.confirms.is_some(),
            transactional: self.tx.is_some(),
        });
    }
}
