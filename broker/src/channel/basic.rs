//! basic.*: qos, consume, cancel, publish, deliver, get, ack, nack, reject, recover.

use std::sync::Arc;

use rmqd_codec::{
    BasicCancel, BasicCancelOk, BasicConsume, BasicConsumeOk, BasicGet, BasicGetEmpty, BasicQos,
    BasicQosOk, ContentMethod, ShortStr, encode_stored_content, reply_code,
};

use super::access::Resource;
use super::content::Published;
use super::{Channel, ChannelConsumer, Ctx, Unacked};
use crate::auth::Access;
use crate::connection::Session;
use crate::error::{AmqpError, resource};
use crate::message::Message;
use crate::metrics::Metrics;
use crate::names::{owned, server_named};
use crate::outbox::Delivery;
use crate::queue::{ConsumeRefused, Consumer, Credit, Queue};
use crate::vhost::notify_orphans;

/// A routed message waiting for its queues: at once outside a transaction, at commit inside one.
pub(crate) struct Routed {
    pub message: Arc<Message>,
    pub queues: Vec<Arc<Queue>>,
    pub mandatory: bool,
}

impl Channel {
    pub(super) fn basic_qos(&mut self, m: BasicQos, ctx: &mut Ctx<'_>) -> Result<(), AmqpError> {
        if m.prefetch_size != 0 {
            return Err(AmqpError::not_implemented(format!(
                "prefetch_size!=0 ({})",
                m.prefetch_size
            )));
        }
        if m.global {
            self.channel_credit.set_limit(m.prefetch_count);
        } else {
            // RabbitMQ's per-consumer semantics: applies to consumers created from now on.
            self.consumer_prefetch = m.prefetch_count;
        }
        ctx.send(self.id, BasicQosOk {});
        self.kick_queues(ctx.now);
        Ok(())
    }

    pub(super) fn basic_consume(
        &mut self,
        m: BasicConsume,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
        let name = self.queue_name(&m.queue)?;
        self.access
            .check(Access::Read, Resource::Queue, name.as_bytes(), ctx)?;
        let vhost = ctx.vhost();
        let queue = vhost.queue(&name, ctx.session.id)?;
        let tag = if m.consumer_tag.is_empty() {
            server_named("amq.ctag-")
        } else {
            owned(&m.consumer_tag)
        };
        if self.consumers.contains_key(&tag) {
            return Err(AmqpError::not_allowed(format!(
                "attempt to reuse consumer tag '{tag}'"
            )));
        }
        let credit = Arc::new(Credit::new(self.consumer_prefetch));
        let ack_required = !m.no_ack;
        // Registered before the queue may deliver, so deliveries find their consumer.
        self.consumers.insert(
            tag.clone(),
            ChannelConsumer {
                queue: Arc::clone(&queue),
                credit: Arc::clone(&credit),
            },
        );
        let consumer = Consumer {
            tag: tag.clone(),
            connection: ctx.session.id,
            channel: self.id,
            outbox: Arc::clone(&ctx.session.outbox),
            ack_required,
            exclusive: m.exclusive,
            credit,
            channel_credit: Arc::clone(&self.channel_credit),
        };
        if let Err(refused) = queue.add_consumer(consumer, ctx.now) {
            self.consumers.remove(&tag);
            return Err(match refused {
                ConsumeRefused::ExclusiveInUse => AmqpError::access_refused(format!(
                    "{} in exclusive use",
                    resource("queue", &name, &vhost.name)
                )),
                ConsumeRefused::Deleted => {
                    AmqpError::not_found(format!("no {}", resource("queue", &name, &vhost.name)))
                }
            });
        }
        // Deliveries travel through the outbox, drained after this frame: consume-ok goes first.
        if !m.nowait {
            ctx.send(self.id, BasicConsumeOk { consumer_tag: tag });
        }
        Ok(())
    }

    pub(super) fn basic_cancel(
        &mut self,
        m: BasicCancel,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
        self.remove_consumer(&m.consumer_tag, ctx.session, ctx.now);
        if !m.nowait {
            ctx.send(
                self.id,
                BasicCancelOk {
                    consumer_tag: m.consumer_tag,
                },
            );
        }
        Ok(())
    }

    /// Unregisters a consumer from its queue, deleting an auto-delete queue that lost its last one.
    /// Its unacked messages stay on the channel: the client may still ack them.
    pub(super) fn remove_consumer(
        &mut self,
        tag: &ShortStr,
        session: &mut Session,
        now: std::time::Instant,
    ) {
        let Some(consumer) = self.consumers.remove(tag) else {
            return;
        };
        if consumer
            .queue
            .remove_consumer(session.id, self.id, tag, now)
            && let Some(vhost) = &session.vhost
        {
            notify_orphans(vhost.remove_queue_if_same(&consumer.queue));
        }
    }

    /// The broker cancelled a consumer (its queue was deleted).
    pub fn consumer_cancelled_by_broker(&mut self, tag: &ShortStr, ctx: &mut Ctx<'_>) {
        if self.consumers.remove(tag).is_none() || self.closing {
            return;
        }
        if ctx.session.capabilities.consumer_cancel_notify {
            ctx.send(
                self.id,
                BasicCancel {
                    consumer_tag: tag.clone(),
                    nowait: true,
                },
            );
        }
    }

    /// A complete message arrived: route it, then enqueue it now or at commit.
    pub(super) fn publish(&mut self, p: Published, ctx: &mut Ctx<'_>) -> Result<(), AmqpError> {
        self.access
            .check(
                Access::Write,
                Resource::Exchange,
                p.publish.exchange.as_bytes(),
                ctx,
            )
            .map_err(|e| e.during(60, 40))?;
        let vhost = ctx.vhost();
        let mut queues = std::mem::take(&mut self.route_buf);
        queues.clear();
        vhost
            .route(
                &p.publish.exchange,
                &p.publish.routing_key,
                p.properties.headers.as_ref(),
                &mut queues,
            )
            .map_err(|e| e.during(60, 40))?;
        let broker = &ctx.session.broker;
        Metrics::add(&broker.metrics.messages_published, 1);
        let message = Arc::new(Message::new(
            &p.publish.exchange,
            &p.publish.routing_key,
            &p.properties,
            p.body,
            &broker.memory,
            &mut self.pack_buf,
        ));
        let routed = Routed {
            message,
            queues,
            mandatory: p.publish.mandatory,
        };
        match &mut self.tx {
            Some(tx) => {
                tx.publishes.push(routed);
            }
            None => {
                let queues = self.enqueue(routed, ctx);
                self.route_buf = queues;
            }
        }
        Ok(())
    }

    /// Puts a routed message into its queues, returns it to the publisher if it reached none and
    /// was mandatory, and records its confirm. Hands back the emptied queue list for reuse.
    pub(super) fn enqueue(&mut self, routed: Routed, ctx: &mut Ctx<'_>) -> Vec<Arc<Queue>> {
        let Routed {
            message,
            mut queues,
            mandatory,
        } = routed;
        let metrics = &ctx.session.broker.metrics;
        if queues.is_empty() {
            Metrics::add(&metrics.messages_unroutable, 1);
            if mandatory {
                let returned = ContentMethod::Return {
                    reply_code: reply_code::NO_ROUTE,
                    reply_text: b"NO_ROUTE",
                    exchange: message.exchange(),
                    routing_key: message.routing_key(),
                };
                encode_stored_content(
                    self.id,
                    &returned,
                    message.encoded_properties(),
                    message.body(),
                    ctx.session.frame_max,
                    ctx.out,
                );
            }
        } else {
            Metrics::add(&metrics.messages_routed, 1);
            let mut stored_at = None;
            if message.is_persistent()
                && let Some(store) = &ctx.session.broker.store
            {
                let durable = &mut self.durable_buf;
                durable.clear();
                durable.extend(queues.iter().filter_map(|q| q.persisted_id()));
                // Recorded before any queue has it, so that an ack can never precede it in the log.
                if !durable.is_empty()
                    && let Some(appended) = store.publish(&message, durable)
                {
                    let synced = &mut ctx.session.disk_wait.synced;
                    *synced = (*synced).max(appended.sequence);
                    stored_at = Some(appended.position);
                }
            }
            for queue in queues.drain(..) {
                queue.publish(Arc::clone(&message), stored_at, ctx.now);
            }
        }
        if let Some(confirms) = &mut self.confirms {
            confirms.confirm_next();
        }
        queues
    }

    /// Writes a delivery a queue handed to this channel, and remembers it until acked.
    pub fn deliver(&mut self, d: Delivery, ctx: &mut Ctx<'_>) {
        if self.closing || !self.consumers.contains_key(&d.consumer_tag) {
            // The consumer went away while this was in flight.
            if d.ack_required {
                self.channel_credit.release(1);
                d.queue.requeue([d.entry], ctx.now);
            }
            return;
        }
        let delivery_tag = self.next_delivery_tag;
        self.next_delivery_tag += 1;
        let message = &d.entry.message;
        let deliver = ContentMethod::Deliver {
            consumer_tag: d.consumer_tag.as_bytes(),
            delivery_tag,
            redelivered: d.entry.redelivered,
            exchange: message.exchange(),
            routing_key: message.routing_key(),
        };
        encode_stored_content(
            self.id,
            &deliver,
            message.encoded_properties(),
            message.body(),
            ctx.session.frame_max,
            ctx.out,
        );
        ctx.session.disk_wait.hold_until_written(d.settled_at);
        Metrics::add(&ctx.session.broker.metrics.messages_delivered, 1);
        if d.entry.redelivered {
            Metrics::add(&ctx.session.broker.metrics.messages_redelivered, 1);
        }
        if d.ack_required {
            self.unacked.push_back(Unacked {
                tag: delivery_tag,
                queue: d.queue,
                entry: d.entry,
                consumer_tag: Some(d.consumer_tag),
                delivered_at: ctx.now,
            });
        }
    }

    pub(super) fn basic_get(&mut self, m: BasicGet, ctx: &mut Ctx<'_>) -> Result<(), AmqpError> {
        let name = self.queue_name(&m.queue)?;
        self.access
            .check(Access::Read, Resource::Queue, name.as_bytes(), ctx)?;
        let queue = ctx.vhost().queue(&name, ctx.session.id)?;
        let Some((entry, remaining, settled_at)) = queue.get(!m.no_ack, ctx.now) else {
            ctx.send(self.id, BasicGetEmpty::default());
            return Ok(());
        };
        ctx.session.disk_wait.hold_until_written(settled_at);
        let delivery_tag = self.next_delivery_tag;
        self.next_delivery_tag += 1;
        let message = &entry.message;
        let get_ok = ContentMethod::GetOk {
            delivery_tag,
            redelivered: entry.redelivered,
            exchange: message.exchange(),
            routing_key: message.routing_key(),
            message_count: remaining,
        };
        encode_stored_content(
            self.id,
            &get_ok,
            message.encoded_properties(),
            message.body(),
            ctx.session.frame_max,
            ctx.out,
        );
        Metrics::add(&ctx.session.broker.metrics.messages_delivered, 1);
        if !m.no_ack {
            self.unacked.push_back(Unacked {
                tag: delivery_tag,
                queue,
                entry,
                consumer_tag: None,
                delivered_at: ctx.now,
            });
        }
        Ok(())
    }

    /// Removes and returns the deliveries an ack, nack or reject names; 406 for an unknown tag.
    /// With `multiple`, everything up to the tag (tag 0: everything outstanding).
    pub(super) fn take_unacked(
        &mut self,
        tag: u64,
        multiple: bool,
    ) -> Result<Vec<Unacked>, AmqpError> {
        if multiple && tag == 0 {
            return Ok(self.unacked.drain(..).collect());
        }
        let at = self
            .unacked
            .binary_search_by_key(&tag, |u| u.tag)
            .map_err(|_| AmqpError::precondition_failed(format!("unknown delivery tag {tag}")))?;
        if multiple {
            Ok(self.unacked.drain(..=at).collect())
        } else {
            Ok(self.unacked.remove(at).into_iter().collect())
        }
    }

    pub(super) fn basic_ack(
        &mut self,
        tag: u64,
        multiple: bool,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
        let acked = self.take_unacked(tag, multiple)?;
        match &mut self.tx {
            Some(tx) => tx.acks.push((acked, None)),
            None => self.settle(acked, ctx),
        }
        Ok(())
    }

    pub(super) fn basic_reject(
        &mut self,
        tag: u64,
        multiple: bool,
        requeue: bool,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
        let rejected = self.take_unacked(tag, multiple)?;
        match &mut self.tx {
            Some(tx) => tx.acks.push((rejected, Some(requeue))),
            None if requeue => self.requeue_unacked(rejected, ctx.now),
            None => self.settle(rejected, ctx),
        }
        Ok(())
    }

    /// Finishes with deliveries for good (acked, or rejected without requeue).
    pub(super) fn settle(&self, done: Vec<Unacked>, ctx: &mut Ctx<'_>) {
        Metrics::add(
            &ctx.session.broker.metrics.messages_acked,
            done.len() as u64,
        );
        let mut per_queue: Vec<(Arc<Queue>, usize)> = Vec::new();
        for u in &done {
            self.release_credit(u);
            ctx.session
                .disk_wait
                .hold_until_written(u.queue.forget(&u.entry));
            match per_queue.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &u.queue)) {
                Some((_, n)) => *n += 1,
                None => per_queue.push((Arc::clone(&u.queue), 1)),
            }
        }
        for (queue, n) in per_queue {
            queue.settle(n, ctx.now);
        }
        self.kick_for_channel_credit(ctx.now);
    }

    /// basic.recover: every unacked message goes back to its queue to be delivered again, marked
    /// redelivered. Like RabbitMQ, only requeue=true is supported.
    pub(super) fn basic_recover(
        &mut self,
        requeue: bool,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
        if !requeue {
            return Err(AmqpError::not_implemented("requeue=false"));
        }
        let all: Vec<Unacked> = self.unacked.drain(..).collect();
        self.requeue_unacked(all, ctx.now);
        Ok(())
    }
}
