//! Users, their password hashes, tags and per-vhost permissions, and the SASL mechanisms
//! clients log in with (PLAIN, AMQPLAIN).

mod password;
mod permissions;
mod sasl;
mod users;

pub use password::{HashingAlgorithm, PasswordHash};
pub use permissions::{Access, InvalidPermission, Permissions};
pub use sasl::MECHANISMS;
pub(crate) use users::UserChange;
pub use users::{LoginError, User, UserError, UserPermissions, Users};
