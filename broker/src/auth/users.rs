//! The user database: names, password hashes, tags and per-vhost permissions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{RwLock, RwLockWriteGuard};

use super::password::{HashingAlgorithm, PasswordHash, SALT_LEN};
use super::permissions::{Access, Permissions};
use super::sasl::{parse_amqplain, parse_plain};

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    password: PasswordHash,
    tags: Vec<String>,
    /// By vhost name.
    permissions: BTreeMap<String, Permissions>,
}

impl User {
    fn new(name: &str, password: PasswordHash) -> User {
        Self::restored(name, password, Vec::new(), BTreeMap::new())
    }

    /// A user as a journal recorded it.
    pub(crate) fn restored(
        name: &str,
        password: PasswordHash,
        tags: Vec<String>,
        permissions: BTreeMap<String, Permissions>,
    ) -> User {
        User {
            name: name.to_string(),
            password,
            tags,
            permissions,
        }
    }

    pub fn password_hash(&self) -> &PasswordHash {
        &self.password
    }

    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The user's permissions, by vhost name.
    pub fn permissions(&self) -> &BTreeMap<String, Permissions> {
        &self.permissions
    }
}

/// One entry of `rabbitmqctl list_permissions`: a user's permissions in a vhost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPermissions {
    pub user: String,
    pub vhost: String,
    pub permissions: Permissions,
}

/// Why a change to users was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("no user '{0}'")]
    NoSuchUser(String),
    #[error("password hash of user '{user}' is invalid: {reason}")]
    InvalidPasswordHash { user: String, reason: String },
}

/// Why a login failed. Both are reported to the client the same way (403), as RabbitMQ does,
/// so a client cannot probe which users exist; the log says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("user '{0}' - invalid credentials")]
    InvalidCredentials(String),
    #[error(
        "user '{0}' attempted to log in with a blank password, which is prohibited by the internal authN backend."
    )]
    BlankPassword(String),
    #[error("user '{0}' can only connect via localhost")]
    LoopbackOnly(String),
    #[error("malformed {0} response")]
    Malformed(&'static str),
    #[error("unsupported mechanism '{0}'")]
    UnknownMechanism(String),
}

#[derive(Default)]
pub struct Users {
    users: RwLock<HashMap<String, User>>,
    /// Bumped by every change, so channels can cache permission checks until the next one.
    generation: AtomicU64,
    /// Users that may log in only from a loopback address (RabbitMQ's `loopback_users`).
    loopback_only: RwLock<HashSet<String>>,
    journal: RwLock<Option<UsersJournal>>,
}

/// A change to record: a user as it now is, or gone.
pub(crate) enum UserChange<'a> {
    Saved(&'a User),
    Deleted(&'a str),
}

pub(crate) type UsersJournal = Box<dyn Fn(UserChange<'_>) + Send + Sync>;

impl Users {
    /// Every change goes through here, so none can forget to move the generation on.
    fn write(&self) -> UsersWrite<'_> {
        UsersWrite {
            users: self.users.write(),
            generation: &self.generation,
        }
    }

    /// Changes whenever a user, password, tag or permission does.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Creates a user, or changes an existing user's password (its tags and permissions stay).
    pub fn add(&self, name: &str, password: &str) {
        self.add_with_hash(name, PasswordHash::of(password));
    }

    /// As [`Users::add`], with a hash from a definitions file (base64 of salt and digest; empty
    /// for a user without a password).
    pub fn add_hashed(
        &self,
        name: &str,
        hash_b64: &str,
        algorithm: HashingAlgorithm,
    ) -> Result<(), UserError> {
        let hash = PasswordHash::from_base64(hash_b64, algorithm).map_err(|reason| {
            UserError::InvalidPasswordHash {
                user: name.to_string(),
                reason,
            }
        })?;
        self.add_with_hash(name, hash);
        Ok(())
    }

    /// As [`Users::add`], with a hash already checked.
    pub fn add_with_hash(&self, name: &str, password: PasswordHash) {
        let mut users = self.write();
        let user = users
            .entry(name.to_string())
            .and_modify(|user| user.password = password.clone())
            .or_insert_with(|| User::new(name, password));
        self.record(UserChange::Saved(user));
    }

    /// Changes one user and records the change.
    fn change(&self, name: &str, f: impl FnOnce(&mut User)) -> Result<(), UserError> {
        let mut users = self.write();
        let user = users
            .get_mut(name)
            .ok_or_else(|| UserError::NoSuchUser(name.to_string()))?;
        f(user);
        self.record(UserChange::Saved(user));
        Ok(())
    }

    /// Called under the write lock, so the journal has changes in the order they were made.
    fn record(&self, change: UserChange<'_>) {
        if let Some(journal) = self.journal.read().as_ref() {
            journal(change);
        }
    }

    /// Where changes are recorded from now on (the data dir's topology log).
    pub(crate) fn set_journal(&self, journal: UsersJournal) {
        *self.journal.write() = Some(journal);
    }

    /// Puts back a user as a journal recorded it; recording nothing.
    pub(crate) fn restore(&self, user: User) {
        self.write().insert(user.name.clone(), user);
    }

    /// Whether there are no users at all.
    pub fn is_empty(&self) -> bool {
        self.users.read().is_empty()
    }

    /// Changes an existing user's password (rabbitmqctl change_password).
    pub fn change_password(&self, name: &str, password: &str) -> Result<(), UserError> {
        let password = PasswordHash::of(password);
        self.change(name, |u| u.password = password)
    }

    /// Removes a user with its permissions (rabbitmqctl delete_user).
    pub fn delete(&self, name: &str) -> Result<(), UserError> {
        let mut users = self.write();
        match users.remove(name) {
            Some(_) => {
                self.record(UserChange::Deleted(name));
                Ok(())
            }
            None => Err(UserError::NoSuchUser(name.to_string())),
        }
    }

    /// Checks a password without logging in (rabbitmqctl authenticate_user).
    pub fn authenticate(&self, name: &str, password: &str) -> Result<(), LoginError> {
        if password.is_empty() {
            return Err(LoginError::BlankPassword(name.to_string()));
        }
        match self.users.read().get(name) {
            Some(user) if user.password.verify(password) => Ok(()),
            _ => Err(LoginError::InvalidCredentials(name.to_string())),
        }
    }

    pub fn set_tags(&self, name: &str, tags: Vec<String>) -> Result<(), UserError> {
        self.change(name, |u| u.tags = tags)
    }

    pub fn set_loopback_only(&self, names: &[String]) {
        *self.loopback_only.write() = names.iter().cloned().collect();
    }

    /// Sets the user's permissions in `vhost`, replacing any it had there. Whether the vhost
    /// exists is the caller's to check: users do not know vhosts.
    pub fn set_permissions(
        &self,
        user: &str,
        vhost: &str,
        permissions: Permissions,
    ) -> Result<(), UserError> {
        self.change(user, |u| {
            u.permissions.insert(vhost.to_string(), permissions);
        })
    }

    /// Removes the user's permissions in `vhost` (rabbitmqctl clear_permissions); clearing
    /// permissions a user does not have is not an error, as in RabbitMQ.
    pub fn clear_permissions(&self, user: &str, vhost: &str) -> Result<(), UserError> {
        self.change(user, |u| {
            u.permissions.remove(vhost);
        })
    }

    /// The user's permissions in `vhost`, if it has any there.
    pub fn permissions_in(&self, user: &str, vhost: &str) -> Option<Permissions> {
        self.users.read().get(user)?.permissions.get(vhost).cloned()
    }

    /// Full permissions in `vhost`; nothing happens for an unknown user.
    pub fn grant(&self, user: &str, vhost: &str) {
        // Callers grant users they have just added; an unknown name is a no-op, as it was
        // before permissions were kept.
        let _ = self.set_permissions(user, vhost, Permissions::full());
    }

    /// Drops every user's permissions in a deleted vhost, so that a vhost created later under
    /// the same name starts with none, as in RabbitMQ.
    pub fn forget_vhost(&self, vhost: &str) {
        let mut users = self.write();
        for user in users.values_mut() {
            if user.permissions.remove(vhost).is_some() {
                self.record(UserChange::Saved(user));
            }
        }
    }

    /// Whether the user's permissions in `vhost` let it `access` the resource `name`, matched
    /// in place: copying them would copy their compiled patterns and match caches.
    pub fn allows(&self, user: &str, vhost: &str, access: Access, name: &[u8]) -> bool {
        self.users
            .read()
            .get(user)
            .and_then(|u| u.permissions.get(vhost))
            .is_some_and(|p| p.allows(access, name))
    }

    /// Whether the user may open `vhost`: it has permissions there, whatever they are.
    pub fn may_access(&self, user: &str, vhost: &str) -> bool {
        self.users
            .read()
            .get(user)
            .is_some_and(|u| u.permissions.contains_key(vhost))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.users.read().contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<User> {
        self.users.read().get(name).cloned()
    }

    /// Every user, by name.
    pub fn list(&self) -> Vec<User> {
        let mut users: Vec<User> = self.users.read().values().cloned().collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        users
    }

    /// Every user's permissions in every vhost, by user then vhost.
    pub fn list_permissions(&self) -> Vec<UserPermissions> {
        self.list()
            .into_iter()
            .flat_map(|u| {
                u.permissions
                    .into_iter()
                    .map(move |(vhost, permissions)| UserPermissions {
                        user: u.name.clone(),
                        vhost,
                        permissions,
                    })
            })
            .collect()
    }

    /// Checks a `connection.start-ok` response; returns the user name.
    pub fn login(
        &self,
        mechanism: &[u8],
        response: &Bytes,
        peer: IpAddr,
    ) -> Result<String, LoginError> {
        let (name, password) = match mechanism {
            b"PLAIN" => parse_plain(response)?,
            b"AMQPLAIN" => parse_amqplain(response)?,
            other => {
                return Err(LoginError::UnknownMechanism(
                    String::from_utf8_lossy(other).into_owned(),
                ));
            }
        };
        if password.is_empty() {
            return Err(LoginError::BlankPassword(name));
        }
        let users = self.users.read();
        let verified = match users.get(&name) {
            Some(user) => user.password.verify(&password),
            None => {
                // Hash anyway, so an unknown name takes as long to refuse as a wrong password.
                std::hint::black_box(PasswordHash::with_salt(
                    HashingAlgorithm::default(),
                    [0; SALT_LEN],
                    &password,
                ));
                false
            }
        };
        if !verified {
            return Err(LoginError::InvalidCredentials(name));
        }
        if !peer.is_loopback() && self.loopback_only.read().contains(&name) {
            return Err(LoginError::LoopbackOnly(name));
        }
        Ok(name)
    }
}

/// A write lock on the users that moves the generation on when released. The bump happens
/// while the lock is still held, so whoever sees the new generation reads the new state.
struct UsersWrite<'a> {
    users: RwLockWriteGuard<'a, HashMap<String, User>>,
    generation: &'a AtomicU64,
}

impl Deref for UsersWrite<'_> {
    type Target = HashMap<String, User>;
    fn deref(&self) -> &Self::Target {
        &self.users
    }
}

impl DerefMut for UsersWrite<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.users
    }
}

impl Drop for UsersWrite<'_> {
    fn drop(&mut self) {
        self.generation.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn users() -> Users {
        let users = Users::default();
        users.add("guest", "guest");
        users.set_loopback_only(&["guest".to_string()]);
        users
    }

    fn plain(user: &str, password: &str) -> Bytes {
        Bytes::from(format!("\0{user}\0{password}"))
    }

    fn login(users: &Users, user: &str, password: &str) -> Result<String, LoginError> {
        users.login(b"PLAIN", &plain(user, password), Ipv4Addr::LOCALHOST.into())
    }

    #[test]
    fn plain_login_with_right_password() {
        assert_eq!(login(&users(), "guest", "guest"), Ok("guest".to_string()));
    }

    #[test]
    fn a_blank_password_is_refused_with_rabbitmqs_reason() {
        assert_eq!(
            login(&users(), "guest", ""),
            Err(LoginError::BlankPassword("guest".into()))
        );
    }

    #[test]
    fn wrong_password_is_refused() {
        let err = login(&users(), "guest", "nope");
        assert_eq!(err, Err(LoginError::InvalidCredentials("guest".into())));
    }

    #[test]
    fn unknown_user_is_refused_like_a_wrong_password() {
        let err = login(&users(), "nobody", "guest");
        assert_eq!(err, Err(LoginError::InvalidCredentials("nobody".into())));
    }

    #[test]
    fn guest_only_from_loopback() {
        let err = users().login(
            b"PLAIN",
            &plain("guest", "guest"),
            Ipv4Addr::new(10, 0, 0, 1).into(),
        );
        assert_eq!(err, Err(LoginError::LoopbackOnly("guest".into())));
    }

    #[test]
    fn amqplain_table_entries_without_length() {
        // LOGIN S "guest", PASSWORD S "guest"
        let mut raw = vec![5];
        raw.extend_from_slice(b"LOGIN");
        raw.push(b'S');
        raw.extend_from_slice(&5u32.to_be_bytes());
        raw.extend_from_slice(b"guest");
        raw.push(8);
        raw.extend_from_slice(b"PASSWORD");
        raw.push(b'S');
        raw.extend_from_slice(&5u32.to_be_bytes());
        raw.extend_from_slice(b"guest");
        let ok = users().login(b"AMQPLAIN", &Bytes::from(raw), Ipv4Addr::LOCALHOST.into());
        assert_eq!(ok, Ok("guest".to_string()));
    }

    #[test]
    fn imported_sha512_and_md5_users_log_in() {
        let users = Users::default();
        users
            .add_hashed(
                "new",
                "JwxxMxVWyOJXQpLFyHff36lcX+n4ZonkCaXfgSle7BdPJyueMsczS/mkfDmUddgEC0wlE9bDM5sXnpMtlh7pjDYUheg=",
                HashingAlgorithm::Sha512,
            )
            .unwrap();
        users
            .add_hashed("old", "SDBABfZXQdG/vD7ZOSfuraVVMy0=", HashingAlgorithm::Md5)
            .unwrap();
        assert_eq!(login(&users, "new", "secret"), Ok("new".to_string()));
        assert_eq!(login(&users, "old", "secret"), Ok("old".to_string()));
        assert!(login(&users, "old", "wrong").is_err());
    }

    #[test]
    fn user_without_password_cannot_log_in() {
        let users = Users::default();
        users
            .add_hashed("carol", "", HashingAlgorithm::Sha256)
            .unwrap();
        assert!(users.get("carol").unwrap().password_hash().is_none());
        assert!(login(&users, "carol", "").is_err());
        assert!(login(&users, "carol", "anything").is_err());
    }

    #[test]
    fn malformed_hashes_are_refused_naming_the_user() {
        let users = Users::default();
        let err = users
            .add_hashed("dave", "not base64!", HashingAlgorithm::Sha256)
            .unwrap_err();
        assert!(
            matches!(&err, UserError::InvalidPasswordHash { user, .. } if user == "dave"),
            "{err}"
        );
        // An MD5-sized hash declared as SHA-256.
        let err = users
            .add_hashed(
                "dave",
                "SDBABfZXQdG/vD7ZOSfuraVVMy0=",
                HashingAlgorithm::Sha256,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "password hash of user 'dave' is invalid: 20 bytes where \
             rabbit_password_hashing_sha256 hashes are 36 (a 4-byte salt and a 32-byte digest)"
        );
        assert!(!users.exists("dave"));
    }

    #[test]
    fn changing_a_password_keeps_tags_and_permissions() {
        let users = users();
        users
            .set_tags("guest", vec!["administrator".into()])
            .unwrap();
        users.grant("guest", "/");
        users.add("guest", "changed");
        let guest = users.get("guest").unwrap();
        assert_eq!(guest.tags(), ["administrator"]);
        assert!(users.may_access("guest", "/"));
        assert!(login(&users, "guest", "changed").is_ok());
        assert!(login(&users, "guest", "guest").is_err());
    }

    #[test]
    fn grant_is_full_permissions_and_may_access_follows_entries() {
        let users = users();
        assert!(!users.may_access("guest", "/"));
        users.grant("guest", "/");
        users
            .set_permissions("guest", "orders", Permissions::new("", "", ".*"))
            .unwrap();
        assert!(users.may_access("guest", "/") && users.may_access("guest", "orders"));
        assert!(!users.may_access("guest", "other"));
        assert_eq!(
            users.list_permissions(),
            vec![
                UserPermissions {
                    user: "guest".into(),
                    vhost: "/".into(),
                    permissions: Permissions::full(),
                },
                UserPermissions {
                    user: "guest".into(),
                    vhost: "orders".into(),
                    permissions: Permissions::new("", "", ".*"),
                },
            ]
        );
        assert_eq!(
            users.set_permissions("nobody", "/", Permissions::full()),
            Err(UserError::NoSuchUser("nobody".into()))
        );
    }
}
