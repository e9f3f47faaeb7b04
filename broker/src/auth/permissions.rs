//! Per-vhost permissions: RabbitMQ's configure, write and read regular expressions.

/// What a user may do in one vhost, as RabbitMQ's regular expressions over resource names.
/// Stored and exported; not yet enforced on operations (a user with an entry may do anything in
/// that vhost).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub configure: String,
    pub write: String,
    pub read: String,
}

impl Permissions {
    pub fn new(configure: &str, write: &str, read: &str) -> Permissions {
        Permissions {
            configure: configure.to_string(),
            write: write.to_string(),
            read: read.to_string(),
        }
    }

    /// `".*" ".*" ".*"`: everything, as `rabbitmqctl set_permissions` is usually given.
    pub fn full() -> Permissions {
        Self::new(".*", ".*", ".*")
    }
}
