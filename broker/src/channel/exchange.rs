//! exchange.declare, delete, bind, unbind.

use rmqd_codec::{
    ExchangeBind, ExchangeBindOk, ExchangeDeclare, ExchangeDeclareOk, ExchangeDelete,
    ExchangeDeleteOk, ExchangeUnbind, ExchangeUnbindOk, FieldValue,
};
use rmqd_routing::ExchangeKind;

use super::access::Resource;
use super::{Channel, Ctx};
use crate::auth::Access;
use crate::error::AmqpError;
use crate::vhost::{Destination, ExchangeSpec};

impl Channel {
    pub(super) fn exchange_declare(
        &mut self,
        m: ExchangeDeclare,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
        // A passive declare only looks, and RabbitMQ lets anyone with access to the vhost look.
        if !m.passive {
            self.check_exchange_declare(&m, ctx)?;
        }
        ctx.vhost().declare_exchange(&ExchangeSpec {
            name: &m.exchange,
            kind: &m.kind,
            passive: m.passive,
            durable: m.durable,
            auto_delete: m.auto_delete,
            internal: m.internal,
            arguments: &m.arguments,
        })?;
        if !m.nowait {
            ctx.send(self.id, ExchangeDeclareOk {});
        }
        Ok(())
    }

    /// Configure access to the exchange; for a new exchange with an alternate exchange, also
    /// read access to it and write access to the alternate, as RabbitMQ asks.
    fn check_exchange_declare(
        &mut self,
        m: &ExchangeDeclare,
        ctx: &Ctx<'_>,
    ) -> Result<(), AmqpError> {
        // RabbitMQ refuses an unknown type and the default exchange before it looks at
        // permissions; the vhost does both.
        if m.exchange.is_empty() || ExchangeKind::from_name(m.kind.as_bytes()).is_none() {
            return Ok(());
        }
        let name = m.exchange.as_bytes();
        self.access
            .check(Access::Configure, Resource::Exchange, name, ctx)?;
        let Some(FieldValue::LongStr(alternate)) = m.arguments.get("alternate-exchange") else {
            return Ok(());
        };
        // A new exchange's reserved name is refused before the alternate is looked at.
        if !name.starts_with(b"amq.") && !ctx.vhost().exchange_exists(&m.exchange) {
            self.access
                .check(Access::Read, Resource::Exchange, name, ctx)?;
            self.access
                .check(Access::Write, Resource::Exchange, alternate, ctx)?;
        }
        Ok(())
    }

    pub(super) fn exchange_delete(
        &mut self,
        m: ExchangeDelete,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
        // RabbitMQ refuses deleting the default and `amq.` exchanges before it looks at
        // permissions; the vhost does that.
        let name = m.exchange.as_bytes();
        if !name.is_empty() && !name.starts_with(b"amq.") {
            self.access
                .check(Access::Configure, Resource::Exchange, name, ctx)?;
        }
        ctx.vhost().delete_exchange(&m.exchange, m.if_unused)?;
        if !m.nowait {
            ctx.send(self.id, ExchangeDeleteOk {});
        }
        Ok(())
    }

    pub(super) fn exchange_bind(
        &mut self,
        m: ExchangeBind,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
        self.access.check_binding(
            Resource::Exchange,
            m.destination.as_bytes(),
            m.source.as_bytes(),
            ctx,
        )?;
        ctx.vhost()
            .bind_exchange(&m.destination, &m.source, &m.routing_key, &m.arguments)?;
        if !m.nowait {
            ctx.send(self.id, ExchangeBindOk {});
        }
        Ok(())
    }

    pub(super) fn exchange_unbind(
        &mut self,
        m: ExchangeUnbind,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
        self.access.check_binding(
            Resource::Exchange,
            m.destination.as_bytes(),
            m.source.as_bytes(),
            ctx,
        )?;
        ctx.vhost().unbind(
            &m.source,
            Destination::Exchange(m.destination),
            &m.routing_key,
            &m.arguments,
        )?;
        if !m.nowait {
            ctx.send(self.id, ExchangeUnbindOk {});
        }
        Ok(())
    }
}
