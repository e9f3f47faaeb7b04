//! Permission checks for a channel's operations, with recent grants remembered so that a
//! publisher pays one atomic load per message rather than a lock and a regular expression.

use bytes::Bytes;

use super::Ctx;
use crate::auth::Access;
use crate::error::{AmqpError, resource};

/// What a permission is checked on, as RabbitMQ's error texts name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Exchange,
    Queue,
}

impl Resource {
    fn kind(self) -> &'static str {
        match self {
            Resource::Exchange => "exchange",
            Resource::Queue => "queue",
        }
    }
}

/// As many grants as a RabbitMQ channel remembers.
const REMEMBERED: usize = 12;

/// The grants a channel has had lately. Unlike RabbitMQ's, which lives until the channel
/// hibernates, they last only while the user database is unchanged: a permission set or
/// cleared while the channel is open applies from its next operation.
#[derive(Default)]
pub(crate) struct AccessCache {
    /// The users' generation the grants were decided under.
    generation: u64,
    /// Most recently used first. Only grants: a refusal closes the channel.
    granted: Vec<(Access, Bytes)>,
}

impl AccessCache {
    /// Whether the connection's user may `access` the named resource in its vhost; 403, in
    /// RabbitMQ's words, if not.
    pub fn check(
        &mut self,
        access: Access,
        on: Resource,
        name: &[u8],
        ctx: &Ctx<'_>,
    ) -> Result<(), AmqpError> {
        // RabbitMQ checks, and names, the default exchange as `amq.default`.
        let name = match (on, name) {
            (Resource::Exchange, b"") => b"amq.default".as_slice(),
            _ => name,
        };
        let users = &ctx.session.broker.users;
        // Read before the permissions: a change racing with this check moves the generation
        // past the one recorded, so at worst the new answer is thrown away, never kept stale.
        let generation = users.generation();
        if generation != self.generation {
            self.granted.clear();
            self.generation = generation;
        }
        if let Some(at) = self
            .granted
            .iter()
            .position(|(a, n)| *a == access && n == name)
        {
            self.granted[..=at].rotate_right(1);
            return Ok(());
        }
        let vhost = ctx.vhost();
        let user = &ctx.session.user;
        if !users.allows(user, &vhost.name.to_string_lossy(), access, name) {
            return Err(AmqpError::access_refused(format!(
                "access to {} refused for user '{user}'",
                resource(on.kind(), &String::from_utf8_lossy(name), &vhost.name)
            )));
        }
        self.granted.truncate(REMEMBERED - 1);
        self.granted
            .insert(0, (access, Bytes::copy_from_slice(name)));
        Ok(())
    }

    /// A binding needs write access to its destination, then read access to its source, as in
    /// RabbitMQ. Between the two RabbitMQ refuses the default exchange at either end; the vhost
    /// does that here, so the source is not checked then.
    pub fn check_binding(
        &mut self,
        destination: Resource,
        destination_name: &[u8],
        source: &[u8],
        ctx: &Ctx<'_>,
    ) -> Result<(), AmqpError> {
        self.check(Access::Write, destination, destination_name, ctx)?;
        let to_default = destination == Resource::Exchange && destination_name.is_empty();
        if source.is_empty() || to_default {
            return Ok(());
        }
        self.check(Access::Read, Resource::Exchange, source, ctx)
    }
}
