//! Assembling a published message from its method, content header and body frames.

use bytes::{Bytes, BytesMut};
use rmqd_codec::{BasicProperties, BasicPublish, ContentHeader};

use super::Ctx;
use crate::error::AmqpError;

enum Body {
    Empty,
    /// The whole body came in one frame: kept as the slice of the read buffer, no copy.
    Single(Bytes),
    /// The body spans frames and is gathered here.
    Gathered(BytesMut),
}

pub(crate) struct Assembly {
    publish: BasicPublish,
    header: Option<(BasicProperties, u64)>,
    body: Body,
    received: u64,
}

/// A complete publish: method, properties and body.
pub(crate) struct Published {
    pub publish: BasicPublish,
    pub properties: BasicProperties,
    pub body: Bytes,
}

impl Assembly {
    pub fn new(publish: BasicPublish) -> Assembly {
        Assembly {
            publish,
            header: None,
            body: Body::Empty,
            received: 0,
        }
    }

    /// The error for a method frame arriving while content is still expected.
    pub fn interrupted(&self) -> AmqpError {
        match self.header {
            None => AmqpError::unexpected_frame(
                "expected content header for class 60, got non content header frame instead",
            ),
            Some(_) => AmqpError::unexpected_frame(
                "expected content body, got non content body frame instead",
            ),
        }
        .during(60, 40)
    }

    fn finish(self) -> Published {
        let body = match self.body {
            Body::Empty => Bytes::new(),
            Body::Single(b) => b,
            Body::Gathered(b) => b.freeze(),
        };
        let (properties, _) = self.header.unwrap_or_default();
        Published {
            publish: self.publish,
            properties,
            body,
        }
    }
}

pub(crate) fn on_header(
    slot: &mut Option<Assembly>,
    header: ContentHeader,
    ctx: &mut Ctx<'_>,
) -> Result<Option<Published>, AmqpError> {
    let Some(assembly) = slot.as_mut().filter(|a| a.header.is_none()) else {
        return Err(AmqpError::unexpected_frame(
            "expected method frame, got non method frame instead",
        ));
    };
    let refuse = |slot: &mut Option<Assembly>, detail: String| {
        *slot = None;
        Err(AmqpError::precondition_failed(detail).during(60, 40))
    };
    let max = ctx.session.broker.config.max_message_size as u64;
    if header.body_size > max {
        return refuse(
            slot,
            format!(
                "message size {} is larger than configured max size {max}",
                header.body_size
            ),
        );
    }
    if let Some(user_id) = &header.properties.user_id
        && user_id.as_bytes() != ctx.session.user.as_bytes()
    {
        let detail = format!(
            "user_id property set to '{user_id}' but authenticated user was '{}'",
            ctx.session.user
        );
        return refuse(slot, detail);
    }
    if let Some(expiration) = &header.properties.expiration
        && expiration
            .as_str()
            .and_then(|e| e.parse::<u64>().ok())
            .is_none()
    {
        let detail = format!("invalid expiration '{expiration}': no_integer");
        return refuse(slot, detail);
    }
    assembly.header = Some((header.properties, header.body_size));
    if header.body_size == 0 {
        return Ok(slot.take().map(Assembly::finish));
    }
    Ok(None)
}

pub(crate) fn on_body(
    slot: &mut Option<Assembly>,
    payload: Bytes,
) -> Result<Option<Published>, AmqpError> {
    let Some(assembly) = slot.as_mut() else {
        return Err(AmqpError::unexpected_frame(
            "expected method frame, got non method frame instead",
        ));
    };
    let Some((_, size)) = assembly.header else {
        return Err(AmqpError::unexpected_frame(
            "expected content header for class 60, got non content header frame instead",
        ));
    };
    assembly.received += payload.len() as u64;
    if assembly.received > size {
        return Err(AmqpError::new(
            rmqd_codec::reply_code::FRAME_ERROR,
            format!(
                "content body of {} bytes exceeds the declared body size {size}",
                assembly.received
            ),
        ));
    }
    let complete = assembly.received == size;
    assembly.body = match std::mem::replace(&mut assembly.body, Body::Empty) {
        Body::Empty if complete => Body::Single(payload),
        Body::Empty => {
            // Grow with what actually arrives rather than trusting the declared size up front.
            let mut gathered = BytesMut::with_capacity((size as usize).min(1 << 20));
            gathered.extend_from_slice(&payload);
            Body::Gathered(gathered)
        }
        Body::Single(first) => {
            let mut gathered = BytesMut::from(&first[..]);
            gathered.extend_from_slice(&payload);
            Body::Gathered(gathered)
        }
        Body::Gathered(mut gathered) => {
            gathered.extend_from_slice(&payload);
            Body::Gathered(gathered)
        }
    };
    if complete {
        return Ok(slot.take().map(Assembly::finish));
    }
    Ok(None)
}
