//! Users, their vhost access, and the SASL mechanisms clients log in with (PLAIN, AMQPLAIN).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use bytes::Bytes;
use parking_lot::RwLock;
use rmqd_codec::{FieldTable, FieldValue};

pub const MECHANISMS: &str = "AMQPLAIN PLAIN";

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    password: String,
    /// Vhosts this user may open.
    vhosts: HashSet<String>,
}

/// Why a login failed. Both are reported to the client the same way (403), as RabbitMQ does,
/// so a client cannot probe which users exist; the log says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("user '{0}' - invalid credentials")]
    InvalidCredentials(String),
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
    /// Users that may log in only from a loopback address (RabbitMQ's `loopback_users`).
    loopback_only: RwLock<HashSet<String>>,
}

impl Users {
    pub fn add(&self, name: &str, password: &str) {
        self.users.write().insert(
            name.to_string(),
            User {
                name: name.to_string(),
                password: password.to_string(),
                vhosts: HashSet::new(),
            },
        );
    }

    pub fn set_loopback_only(&self, names: &[String]) {
        *self.loopback_only.write() = names.iter().cloned().collect();
    }

    pub fn grant(&self, user: &str, vhost: &str) {
        if let Some(u) = self.users.write().get_mut(user) {
            u.vhosts.insert(vhost.to_string());
        }
    }

    pub fn may_access(&self, user: &str, vhost: &str) -> bool {
        self.users
            .read()
            .get(user)
            .is_some_and(|u| u.vhosts.contains(vhost))
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
        let users = self.users.read();
        let user = users
            .get(&name)
            .filter(|u| u.password == password)
            .ok_or_else(|| LoginError::InvalidCredentials(name.clone()))?;
        if !peer.is_loopback() && self.loopback_only.read().contains(&user.name) {
            return Err(LoginError::LoopbackOnly(name));
        }
        Ok(name)
    }
}

/// PLAIN (RFC 4616): `authzid \0 authcid \0 password`.
fn parse_plain(response: &[u8]) -> Result<(String, String), LoginError> {
    let mut parts = response.split(|b| *b == 0);
    let (Some(_authzid), Some(user), Some(pass), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(LoginError::Malformed("PLAIN"));
    };
    Ok((
        String::from_utf8_lossy(user).into_owned(),
        String::from_utf8_lossy(pass).into_owned(),
    ))
}

/// AMQPLAIN: a field table's entries (without the table's length prefix) holding LOGIN and
/// PASSWORD, as py-amqp and kombu send it.
fn parse_amqplain(response: &Bytes) -> Result<(String, String), LoginError> {
    let table =
        FieldTable::decode_entries(response).map_err(|_| LoginError::Malformed("AMQPLAIN"))?;
    let text = |key: &str| match table.get(key) {
        Some(FieldValue::LongStr(b) | FieldValue::ByteArray(b)) => {
            Ok(String::from_utf8_lossy(b).into_owned())
        }
        _ => Err(LoginError::Malformed("AMQPLAIN")),
    };
    Ok((text("LOGIN")?, text("PASSWORD")?))
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

    #[test]
    fn plain_login_with_right_password() {
        let ok = users().login(
            b"PLAIN",
            &Bytes::from_static(b"\0guest\0guest"),
            Ipv4Addr::LOCALHOST.into(),
        );
        assert_eq!(ok, Ok("guest".to_string()));
    }

    #[test]
    fn wrong_password_is_refused() {
        let err = users().login(
            b"PLAIN",
            &Bytes::from_static(b"\0guest\0nope"),
            Ipv4Addr::LOCALHOST.into(),
        );
        assert_eq!(err, Err(LoginError::InvalidCredentials("guest".into())));
    }

    #[test]
    fn guest_only_from_loopback() {
        let err = users().login(
            b"PLAIN",
            &Bytes::from_static(b"\0guest\0guest"),
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
}
