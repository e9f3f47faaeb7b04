//! confirm.select with publisher confirms, and tx.select / commit / rollback.

use bytes::BytesMut;
use rmqd_codec::{
    BasicAck, ConfirmSelectOk, Method, TxCommitOk, TxRollbackOk, TxSelectOk, encode_method,
};

use super::basic::Routed;
use super::{Channel, Ctx, Unacked};
use crate::error::AmqpError;

/// Publisher confirms. Messages are confirmed in publish order; acks gathered while one read's
/// frames are processed go out as a single `multiple` ack.
#[derive(Default)]
pub(crate) struct Confirms {
    published: u64,
    confirmed: u64,
    sent: u64,
}

impl Confirms {
    pub fn confirm_next(&mut self) {
        self.published += 1;
        self.confirmed = self.published;
    }

    pub fn flush(&mut self, channel: u16, out: &mut BytesMut) {
        if self.confirmed == self.sent {
            return;
        }
        let ack = BasicAck {
            delivery_tag: self.confirmed,
            multiple: self.confirmed - self.sent > 1,
        };
        encode_method(channel, &Method::BasicAck(ack), out);
        self.sent = self.confirmed;
    }
}

/// What a transaction holds until commit: routed publishes, and settled deliveries with what to
/// do with them (`None` ack, `Some(requeue)` reject).
#[derive(Default)]
pub(crate) struct Transaction {
    pub publishes: Vec<Routed>,
    pub acks: Vec<(Vec<Unacked>, Option<bool>)>,
}

impl Channel {
    pub(super) fn confirm_select(
        &mut self,
        nowait: bool,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), AmqpError> {
        if self.tx.is_some() {
            return Err(AmqpError::precondition_failed(
                "cannot switch from tx to confirm mode",
            ));
        }
        self.confirms.get_or_insert_with(Confirms::default);
        if !nowait {
            ctx.send(self.id, ConfirmSelectOk {});
        }
        Ok(())
    }

    pub(super) fn tx_select(&mut self, ctx: &mut Ctx<'_>) -> Result<(), AmqpError> {
        if self.confirms.is_some() {
            return Err(AmqpError::precondition_failed(
                "cannot switch from confirm to tx mode",
            ));
        }
        self.tx.get_or_insert_with(Transaction::default);
        ctx.send(self.id, TxSelectOk {});
        Ok(())
    }

    pub(super) fn tx_commit(&mut self, ctx: &mut Ctx<'_>) -> Result<(), AmqpError> {
        let Some(tx) = self.tx.replace(Transaction::default()) else {
            return Err(not_transactional());
        };
        for routed in tx.publishes {
            self.enqueue(routed, ctx);
        }
        for (unacked, reject) in tx.acks {
            match reject {
                Some(true) => self.requeue_unacked(unacked, ctx.now),
                _ => self.settle(unacked, ctx),
            }
        }
        ctx.send(self.id, TxCommitOk {});
        Ok(())
    }

    pub(super) fn tx_rollback(&mut self, ctx: &mut Ctx<'_>) -> Result<(), AmqpError> {
        let Some(tx) = self.tx.replace(Transaction::default()) else {
            return Err(not_transactional());
        };
        // Acks are undone: those deliveries are outstanding again, in tag order.
        for (unacked, _) in tx.acks {
            for u in unacked {
                let at = self.unacked.partition_point(|x| x.tag < u.tag);
                self.unacked.insert(at, u);
            }
        }
        ctx.send(self.id, TxRollbackOk {});
        Ok(())
    }
}

fn not_transactional() -> AmqpError {
    AmqpError::precondition_failed("channel is not transactional")
}
