//! What a broker starts with, as RabbitMQ's `default_user`, `default_pass`, `default_vhost`
//! and `loopback_users` settings describe it, plus extra users and vhosts.

use tracing::info;

use crate::broker::Broker;

#[derive(Debug, Clone)]
pub struct Setup {
    pub default_user: String,
    pub default_pass: String,
    pub default_vhost: String,
    /// Further users, each with full permissions on every vhost created here.
    pub users: Vec<(String, String)>,
    pub vhosts: Vec<String>,
    /// Users that may log in only from a loopback address; RabbitMQ's default is guest.
    pub loopback_users: Vec<String>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            default_user: "guest".to_string(),
            default_pass: "guest".to_string(),
            default_vhost: "/".to_string(),
            users: Vec::new(),
            vhosts: Vec::new(),
            loopback_users: vec!["guest".to_string()],
        }
    }
}

impl Setup {
    /// Every vhost, the default one first.
    pub fn all_vhosts(&self) -> Vec<String> {
        let mut vhosts = vec![self.default_vhost.clone()];
        vhosts.extend(
            self.vhosts
                .iter()
                .filter(|v| **v != self.default_vhost)
                .cloned(),
        );
        vhosts
    }

    /// Creates what the settings ask for. As in RabbitMQ, the default user (tagged
    /// administrator) and vhost are created only on first start: on a data dir that has
    /// started before, the users and vhosts are what the operator has since made them. The
    /// extra users and vhosts are created, and given full permissions, on every start.
    pub fn apply(&self, broker: &Broker) {
        if broker.is_initialised() {
            info!("the data dir has started before: default user and vhost left as they are");
        } else {
            broker.add_vhost(&self.default_vhost);
            broker.users.add(&self.default_user, &self.default_pass);
            let _ = broker
                .users
                .set_tags(&self.default_user, vec!["administrator".to_string()]);
            broker.users.grant(&self.default_user, &self.default_vhost);
            broker.mark_initialised();
        }
        for vhost in &self.vhosts {
            broker.add_vhost(vhost);
        }
        let exists = |vhost: &&String| broker.vhost(vhost.as_bytes()).is_some();
        let grant = |user: &str, vhost: &str| {
            // Permissions the operator has since changed stay as they are.
            if !broker.users.may_access(user, vhost) {
                broker.users.grant(user, vhost);
            }
        };
        for vhost in &self.vhosts {
            grant(&self.default_user, vhost);
        }
        let vhosts = self.all_vhosts();
        for (name, password) in &self.users {
            broker.users.add(name, password);
            for vhost in vhosts.iter().filter(exists) {
                grant(name, vhost);
            }
        }
        broker.users.set_loopback_only(&self.loopback_users);
    }
}

/// An `amqp://` URL for a client, with the parts percent-encoded as the AMQP URI spec asks.
/// The default vhost "/" is left out (the spec's default) rather than written "%2F", which
/// some clients (amqprs) do not decode.
pub fn amqp_url(host: &str, port: u16, user: &str, password: &str, vhost: &str) -> String {
    url(host, port, user, Some(password), vhost)
}

/// [`amqp_url`] without the password, for showing where a secret must not be printed.
pub fn amqp_url_without_password(host: &str, port: u16, user: &str, vhost: &str) -> String {
    url(host, port, user, None, vhost)
}

fn url(host: &str, port: u16, user: &str, password: Option<&str>, vhost: &str) -> String {
    let password = password.map_or(String::new(), |p| format!(":{}", percent_encode(p)));
    let base = format!("amqp://{}{password}@{host}:{port}", percent_encode(user));
    match vhost {
        "/" => base,
        _ => format!("{base}/{}", percent_encode(vhost)),
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_the_default_vhost_and_odd_credentials() {
        assert_eq!(
            amqp_url("127.0.0.1", 5672, "guest", "guest", "/"),
            "amqp://guest:guest@127.0.0.1:5672"
        );
        assert_eq!(
            amqp_url("localhost", 1, "a@b", "p:w/d", "/test"),
            "amqp://a%40b:p%3Aw%2Fd@localhost:1/%2Ftest"
        );
        assert_eq!(
            amqp_url_without_password("localhost", 1, "a@b", "/test"),
            "amqp://a%40b@localhost:1/%2Ftest"
        );
    }
}
