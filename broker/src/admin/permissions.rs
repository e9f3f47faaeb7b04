//! `set_permissions`, `clear_permissions`, `list_permissions`, `list_user_permissions`.

use super::spec::{Column, CommandSpec};
use super::{Call, Failure, Response};
use crate::auth::{Permissions, UserError};
use crate::broker::Broker;

const IN_VHOST: &[Column] = &[
    Column::plain("user"),
    Column::plain("configure"),
    Column::plain("write"),
    Column::plain("read"),
];

const OF_USER: &[Column] = &[
    Column::plain("vhost"),
    Column::plain("configure"),
    Column::plain("write"),
    Column::plain("read"),
];

const GROUP: &str = "Access Control";

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::exact(
        GROUP,
        "clear_permissions",
        "[--vhost <vhost>] <username>",
        "Revokes user permissions for a vhost",
        1,
        clear_permissions,
    ),
    CommandSpec {
        columns: IN_VHOST,
        default_columns: &["user", "configure", "write", "read"],
        ..CommandSpec::exact(
            GROUP,
            "list_permissions",
            "[--vhost <vhost>] [--no-table-headers]",
            "Lists user permissions in a virtual host",
            0,
            list_permissions,
        )
    },
    CommandSpec {
        columns: OF_USER,
        default_columns: &["vhost", "configure", "write", "read"],
        ..CommandSpec::exact(
            GROUP,
            "list_user_permissions",
            "[--no-table-headers] <username>",
            "Lists permissions of a user across all virtual hosts",
            1,
            list_user_permissions,
        )
    },
    CommandSpec::exact(
        GROUP,
        "set_permissions",
        "[--vhost <vhost>] <username> <conf> <write> <read>",
        "Sets user permissions for a vhost",
        4,
        set_permissions,
    ),
];

/// The errors set_permissions and clear_permissions share, without quotes around names as
/// rabbitmqctl prints them.
fn no_vhost(vhost: &str) -> Response {
    Response::failed(
        Failure::Unavailable,
        format!("Virtual host {vhost} does not exist"),
    )
}

fn no_user(err: UserError) -> Response {
    match err {
        UserError::NoSuchUser(name) => {
            Response::failed(Failure::NoUser, format!("User {name} does not exist"))
        }
        other => Response::failed(Failure::Software, other.to_string()),
    }
}

fn set_permissions(broker: &Broker, call: &Call<'_>) -> Response {
    if broker.vhost(call.vhost.as_bytes()).is_none() {
        return no_vhost(call.vhost);
    }
    let (configure, write, read) = (call.arg(1), call.arg(2), call.arg(3));
    let permissions = match Permissions::parse(configure, write, read) {
        Ok(permissions) => permissions,
        Err(invalid) => {
            return Response::failed(
                Failure::Unavailable,
                format!("regular expression '{}' is invalid", invalid.pattern),
            );
        }
    };
    broker
        .users
        .set_permissions(call.arg(0), call.vhost, permissions)
        .map_or_else(no_user, |()| Response::done())
}

fn clear_permissions(broker: &Broker, call: &Call<'_>) -> Response {
    if broker.vhost(call.vhost.as_bytes()).is_none() {
        return no_vhost(call.vhost);
    }
    broker
        .users
        .clear_permissions(call.arg(0), call.vhost)
        .map_or_else(no_user, |()| Response::done())
}

fn list_permissions(broker: &Broker, call: &Call<'_>) -> Response {
    if broker.vhost(call.vhost.as_bytes()).is_none() {
        return Response::no_vhost(call.vhost);
    }
    let entries: Vec<_> = broker
        .users
        .list_permissions()
        .into_iter()
        .filter(|p| p.vhost == call.vhost)
        .collect();
    Response::table(&call.columns, &entries, |entry, column| {
        let p = &entry.permissions;
        match column {
            "user" => entry.user.as_str().into(),
            "configure" => p.configure.as_str().into(),
            "write" => p.write.as_str().into(),
            _ => p.read.as_str().into(),
        }
    })
}

fn list_user_permissions(broker: &Broker, call: &Call<'_>) -> Response {
    let name = call.arg(0);
    let Some(user) = broker.users.get(name) else {
        return Response::failed(
            Failure::Unavailable,
            format!("{{:no_such_user, \"{name}\"}}"),
        );
    };
    let entries: Vec<_> = user.permissions().iter().collect();
    Response::table(&call.columns, &entries, |(vhost, p), column| match column {
        "vhost" => vhost.as_str().into(),
        "configure" => p.configure.as_str().into(),
        "write" => p.write.as_str().into(),
        _ => p.read.as_str().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{broker, rows, run, run_in};
    use super::*;

    #[test]
    fn permissions_are_listed_by_vhost_and_by_user() {
        let broker = broker();
        broker.add_vhost("orders");
        assert!(run(&broker, "add_user", &["alice", "pw"]).ok);
        assert!(
            run_in(
                &broker,
                "orders",
                "set_permissions",
                &["alice", "^c.*", "w", ""]
            )
            .ok
        );
        assert!(run(&broker, "set_permissions", &["alice", ".*", ".*", ".*"]).ok);
        assert_eq!(
            rows(&run_in(&broker, "orders", "list_permissions", &[])),
            ["\"alice\" \"^c.*\" \"w\" \"\""]
        );
        assert_eq!(
            rows(&run(&broker, "list_user_permissions", &["alice"])),
            [
                "\"/\" \".*\" \".*\" \".*\"",
                "\"orders\" \"^c.*\" \"w\" \"\""
            ]
        );
        assert!(run_in(&broker, "orders", "clear_permissions", &["alice"]).ok);
        assert!(
            run_in(&broker, "orders", "clear_permissions", &["alice"]).ok,
            "twice is fine"
        );
        assert_eq!(
            rows(&run(&broker, "list_user_permissions", &["alice"])).len(),
            1
        );
    }

    #[test]
    fn missing_vhosts_and_users_fail_as_rabbitmqctl_does() {
        let broker = broker();
        let failure = |r: Response| (r.failure, r.bare_error, r.error.unwrap_or_default());
        assert_eq!(
            failure(run_in(
                &broker,
                "nope",
                "set_permissions",
                &["guest", "a", "b", "c"]
            )),
            (
                Some(Failure::Unavailable),
                false,
                "Virtual host nope does not exist".into()
            )
        );
        assert_eq!(
            failure(run(&broker, "set_permissions", &["ghost", "a", "b", "c"])),
            (
                Some(Failure::NoUser),
                false,
                "User ghost does not exist".into()
            )
        );
        assert_eq!(
            failure(run(&broker, "clear_permissions", &["ghost"])),
            (
                Some(Failure::NoUser),
                false,
                "User ghost does not exist".into()
            )
        );
        assert_eq!(
            failure(run_in(&broker, "nope", "list_permissions", &[])),
            (
                Some(Failure::DataErr),
                true,
                "Virtual host 'nope' does not exist".into()
            )
        );
        assert_eq!(
            failure(run(&broker, "list_user_permissions", &["ghost"])),
            (
                Some(Failure::Unavailable),
                false,
                "{:no_such_user, \"ghost\"}".into()
            )
        );
    }

    #[test]
    fn an_invalid_pattern_changes_nothing() {
        let broker = broker();
        let response = run(&broker, "set_permissions", &["guest", "(", ".*", ".*"]);
        assert_eq!(
            response.error.as_deref(),
            Some("regular expression '(' is invalid")
        );
        assert_eq!(
            broker.users.permissions_in("guest", "/"),
            Some(Permissions::full())
        );
    }
}
