//! queue.declare, bind, unbind, purge, delete.

use std::sync::Arc;

use rmqd_codec::{
    FieldValue, QueueBind, QueueBindOk, QueueDeclare, QueueDeclareOk, QueueDelete, QueueDeleteOk,
    QueuePurge, QueuePurgeOk, QueueUnbind, QueueUnbindOk, ShortStr, reply_code,
};

use super::access::Resource;
use super::{Channel, Ctx};
use crate::auth::Access;
use crate::error::AmqpError;
use crate::names::server_named;
use crate::vhost::{Destination, QueueSpec, notify_orphans};

impl Channel {
    /// An empty queue name means the last queue declared on this channel, as the spec says.
    pub(super) fn queue_name(&self, name: &ShortStr) -> Result<ShortStr, AmqpError> {
        if !name.is_empty() {
            return Ok(name.clone());
        }
        self.last_queue
            .clone()
            .ok_or_else(|| AmqpError::not_found("no previously declared queue"))
    }

    pub(super) fn queue_declare(
        &mut self,
        m: QueueDeclare,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
        // A passive declare only looks, and RabbitMQ lets anyone with access to the vhost look.
        if !m.passive {
            self.check_queue_declare(&m, ctx)?;
        }
        let vhost = ctx.vhost();
        let (queue, counts) = vhost.declare_queue(
            &QueueSpec {
                name: &m.queue,
                passive: m.passive,
                durable: m.durable,
                exclusive: m.exclusive,
                auto_delete: m.auto_delete,
                arguments: &m.arguments,
            },
            ctx.session.id,
            ctx.now,
        )?;
        if queue.exclusive_owner == Some(ctx.session.id)
            && !ctx
                .session
                .exclusive_queues
                .iter()
                .any(|q| Arc::ptr_eq(q, &queue))
        {
            ctx.session.exclusive_queues.push(Arc::clone(&queue));
        }
        self.last_queue = Some(queue.name.clone());
        if !m.nowait {
            ctx.send(
                self.id,
                QueueDeclareOk {
                    queue: queue.name.clone(),
                    message_count: counts.ready,
                    consumer_count: counts.consumers,
                },
            );
        }
        Ok(())
    }

    /// Configure access to the queue; for a new queue that dead-letters, also read access to it
    /// and write access to the exchange it dead-letters to, as RabbitMQ asks.
    fn check_queue_declare(&mut self, m: &QueueDeclare, ctx: &Ctx<'_>) -> Result<(), AmqpError> {
        // RabbitMQ refuses a reserved name before it looks at permissions; the vhost does that.
        if m.queue.as_bytes().starts_with(b"amq.") {
            return Ok(());
        }
        // The vhost picks a server-named queue's name as it creates it, so the check is on a
        // name of the same form: no sensible pattern tells two random suffixes apart.
        let name = match m.queue.is_empty() {
            true => server_named("amq.gen-"),
            false => m.queue.clone(),
        };
        self.access
            .check(Access::Configure, Resource::Queue, name.as_bytes(), ctx)?;
        let Some(FieldValue::LongStr(dlx)) = m.arguments.get("x-dead-letter-exchange") else {
            return Ok(());
        };
        let is_new = m.queue.is_empty()
            || matches!(ctx.vhost().queue(&name, ctx.session.id),
                        Err(e) if e.code == reply_code::NOT_FOUND);
        if is_new {
            self.access
                .check(Access::Read, Resource::Queue, name.as_bytes(), ctx)?;
            self.access
                .check(Access::Write, Resource::Exchange, dlx, ctx)?;
        }
        Ok(())
    }

    pub(super) fn queue_bind(&mut self, m: QueueBind, ctx: &mut Ctx<'_>) -> Result<(), AmqpError> {
        let queue = self.queue_name(&m.queue)?;
        self.access.check_binding(
            Resource::Queue,
            queue.as_bytes(),
            m.exchange.as_bytes(),
            ctx,
        )?;
        // With the queue name left empty, an empty routing key means the queue's name too.
        let routing_key = if m.queue.is_empty() && m.routing_key.is_empty() {
            queue.clone()
        } else {
            m.routing_key
        };
        ctx.vhost().bind_queue(
            &queue,
            &m.exchange,
            &routing_key,
            &m.arguments,
            ctx.session.id,
        )?;
        if !m.nowait {
            ctx.send(self.id, QueueBindOk {});
        }
        Ok(())
    }

    pub(super) fn queue_unbind(
        &mut self,
        m: QueueUnbind,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
        let queue = self.queue_name(&m.queue)?;
        self.access.check_binding(
            Resource::Queue,
            queue.as_bytes(),
            m.exchange.as_bytes(),
            ctx,
        )?;
        ctx.vhost().unbind(
            &m.exchange,
            Destination::Queue(queue),
            &m.routing_key,
            &m.arguments,
        )?;
        ctx.send(self.id, QueueUnbindOk {});
        Ok(())
    }

    pub(super) fn queue_purge(
        &mut self,
        m: QueuePurge,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
        let name = self.queue_name(&m.queue)?;
        self.access
            .check(Access::Read, Resource::Queue, name.as_bytes(), ctx)?;
        let queue = ctx.vhost().queue(&name, ctx.session.id)?;
        let message_count = queue.purge();
        if !m.nowait {
            ctx.send(self.id, QueuePurgeOk { message_count });
        }
        Ok(())
    }

    pub(super) fn queue_delete(
        &mut self,
        m: QueueDelete,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
        let name = self.queue_name(&m.queue)?;
        self.access
            .check(Access::Configure, Resource::Queue, name.as_bytes(), ctx)?;
        let (message_count, orphans) =
            ctx.vhost()
                .delete_queue(&name, m.if_unused, m.if_empty, ctx.session.id, ctx.now)?;
        ctx.session.exclusive_queues.retain(|q| q.name != name);
        notify_orphans(orphans);
        if !m.nowait {
            ctx.send(self.id, QueueDeleteOk { message_count });
        }
        Ok(())
    }
}
