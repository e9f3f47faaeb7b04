//! AMQP errors as the broker raises them: a reply code, a RabbitMQ-style text, and the method
//! that caused it. Whether the code is a channel or a connection error decides what closes.

use std::fmt;

use rmqd_codec::reply_code;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpError {
    pub code: u16,
    /// The detail after `NAME - `, e.g. `no queue 'x' in vhost '/'`.
    pub detail: String,
    pub class_id: u16,
    pub method_id: u16,
}

impl AmqpError {
    pub fn new(code: u16, detail: impl Into<String>) -> Self {
        AmqpError {
            code,
            detail: detail.into(),
            class_id: 0,
            method_id: 0,
        }
    }

    /// Records the method being handled, unless an inner step already named one.
    pub fn during(mut self, class_id: u16, method_id: u16) -> Self {
        if self.class_id == 0 {
            self.class_id = class_id;
            self.method_id = method_id;
        }
        self
    }

    /// Connection errors close the whole connection; the rest close only the channel.
    pub fn is_connection_error(&self) -> bool {
        reply_code::is_hard_error(self.code)
    }

    /// The reply text as RabbitMQ writes it: `NOT_FOUND - no queue 'x' in vhost '/'`.
    pub fn reply_text(&self) -> String {
        format!("{} - {}", reply_code::name(self.code), self.detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(reply_code::NOT_FOUND, detail)
    }

    pub fn access_refused(detail: impl Into<String>) -> Self {
        Self::new(reply_code::ACCESS_REFUSED, detail)
    }

    pub fn resource_locked(detail: impl Into<String>) -> Self {
        Self::new(reply_code::RESOURCE_LOCKED, detail)
    }

    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(reply_code::PRECONDITION_FAILED, detail)
    }

    pub fn not_allowed(detail: impl Into<String>) -> Self {
        Self::new(reply_code::NOT_ALLOWED, detail)
    }

    pub fn command_invalid(detail: impl Into<String>) -> Self {
        Self::new(reply_code::COMMAND_INVALID, detail)
    }

    pub fn channel_error(detail: impl Into<String>) -> Self {
        Self::new(reply_code::CHANNEL_ERROR, detail)
    }

    pub fn unexpected_frame(detail: impl Into<String>) -> Self {
        Self::new(reply_code::UNEXPECTED_FRAME, detail)
    }

    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(reply_code::NOT_IMPLEMENTED, detail)
    }
}

impl fmt::Display for AmqpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reply_text())
    }
}

impl std::error::Error for AmqpError {}

/// How RabbitMQ names a resource in error texts: `queue 'q' in vhost '/'`.
pub(crate) fn resource(kind: &str, name: &impl fmt::Display, vhost: &impl fmt::Display) -> String {
    format!("{kind} '{name}' in vhost '{vhost}'")
}
