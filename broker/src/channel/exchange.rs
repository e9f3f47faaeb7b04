//! exchange.declare, delete, bind, unbind.

use rmqd_codec::{
    ExchangeBind, ExchangeBindOk, ExchangeDeclare, ExchangeDeclareOk, ExchangeDelete,
    ExchangeDeleteOk, ExchangeUnbind, ExchangeUnbindOk,
};

use super::{Channel, Ctx};
use crate::error::AmqpError;
use crate::vhost::{Destination, ExchangeSpec};

impl Channel {
    pub(super) fn exchange_declare(
        &mut self,
        m: ExchangeDeclare,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
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

    pub(super) fn exchange_delete(
        &mut self,
        m: ExchangeDelete,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
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
