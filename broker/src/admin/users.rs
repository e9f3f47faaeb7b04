//! `list_users`, `add_user`, `delete_user`, `change_password`, `authenticate_user`,
//! `set_user_tags`.

use serde_json::Value;

use super::spec::{Column, CommandSpec, Render};
use super::{Call, Failure, Response};
use crate::auth::UserError;
use crate::broker::Broker;

const LIST_COLUMNS: &[Column] = &[
    Column::plain("user"),
    Column::rendered("tags", Render::List),
];

const GROUP: &str = "Users";

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::plain(
        GROUP,
        "add_user",
        "<username> <password>",
        "Creates a new user in the internal database. This user will have no permissions for any virtual hosts by default.",
        (2, Some(2)),
        add_user,
    ),
    CommandSpec::plain(
        GROUP,
        "authenticate_user",
        "<username> <password>",
        "Attempts to authenticate a user. Exits with a non-zero code if authentication fails.",
        (2, Some(2)),
        authenticate_user,
    ),
    CommandSpec::plain(
        GROUP,
        "change_password",
        "<username> <password>",
        "Changes the user password",
        (2, Some(2)),
        change_password,
    ),
    CommandSpec::plain(
        GROUP,
        "delete_user",
        "<username>",
        "Removes a user from the internal database",
        (1, Some(1)),
        delete_user,
    ),
    CommandSpec {
        columns: LIST_COLUMNS,
        default_columns: &["user", "tags"],
        ..CommandSpec::plain(
            GROUP,
            "list_users",
            "[--no-table-headers]",
            "List user names and tags",
            (0, Some(0)),
            list_users,
        )
    },
    CommandSpec::plain(
        GROUP,
        "set_user_tags",
        "<username> <tag> [...]",
        "Sets user tags",
        (1, None),
        set_user_tags,
    ),
];

fn no_such_user(err: UserError) -> Response {
    let UserError::NoSuchUser(name) = &err else {
        return Response::failed(Failure::Software, err.to_string());
    };
    Response::failed(Failure::NoUser, format!("User \"{name}\" does not exist"))
}

fn list_users(broker: &Broker, call: &Call<'_>) -> Response {
    Response::table(
        &call.columns,
        &broker.users.list(),
        |user, column| match column {
            "user" => user.name.as_str().into(),
            _ => Value::from(user.tags().to_vec()),
        },
    )
}

fn add_user(broker: &Broker, call: &Call<'_>) -> Response {
    let name = call.arg(0);
    if broker.users.exists(name) {
        return Response::failed(Failure::Software, format!("User \"{name}\" already exists"));
    }
    broker.users.add(name, call.arg(1));
    Response::done()
}

fn delete_user(broker: &Broker, call: &Call<'_>) -> Response {
    broker
        .users
        .delete(call.arg(0))
        .map_or_else(no_such_user, |()| Response::done())
}

fn change_password(broker: &Broker, call: &Call<'_>) -> Response {
    broker
        .users
        .change_password(call.arg(0), call.arg(1))
        .map_or_else(no_such_user, |()| Response::done())
}

fn authenticate_user(broker: &Broker, call: &Call<'_>) -> Response {
    let name = call.arg(0);
    match broker.users.authenticate(name, call.arg(1)) {
        Ok(()) => Response::message("Success"),
        Err(why) => Response::failed(
            Failure::DataErr,
            format!("Error: failed to authenticate user \"{name}\"\n{why}"),
        ),
    }
}

fn set_user_tags(broker: &Broker, call: &Call<'_>) -> Response {
    let tags = call.args.iter().skip(1).cloned().collect();
    broker
        .users
        .set_tags(call.arg(0), tags)
        .map_or_else(no_such_user, |()| Response::done())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{broker, rows, run};
    use super::*;

    #[test]
    fn users_are_listed_by_name_with_their_tags() {
        let broker = broker();
        assert!(run(&broker, "add_user", &["alice", "secret"]).ok);
        assert!(
            run(
                &broker,
                "set_user_tags",
                &["alice", "monitoring", "management"]
            )
            .ok
        );
        assert_eq!(
            rows(&run(&broker, "list_users", &[])),
            ["\"alice\" [\"monitoring\",\"management\"]", "\"guest\" []"]
        );
        assert!(
            run(&broker, "set_user_tags", &["alice"]).ok,
            "no tags clears them"
        );
        assert_eq!(rows(&run(&broker, "list_users", &[]))[0], "\"alice\" []");
    }

    #[test]
    fn adding_an_existing_user_fails_and_keeps_its_password() {
        let broker = broker();
        let response = run(&broker, "add_user", &["guest", "other"]);
        assert_eq!(
            (response.failure, response.error.as_deref()),
            (
                Some(Failure::Software),
                Some("User \"guest\" already exists")
            )
        );
        assert!(run(&broker, "authenticate_user", &["guest", "guest"]).ok);
    }

    #[test]
    fn missing_users_are_named_with_exit_code_67() {
        let broker = broker();
        for (command, args) in [
            ("delete_user", vec!["ghost"]),
            ("change_password", vec!["ghost", "pw"]),
            ("set_user_tags", vec!["ghost", "admin"]),
        ] {
            let response = run(&broker, command, &args);
            assert_eq!(
                (response.failure, response.error.as_deref()),
                (Some(Failure::NoUser), Some("User \"ghost\" does not exist")),
                "{command}"
            );
        }
    }

    #[test]
    fn authenticate_user_checks_the_changed_password() {
        let broker = broker();
        assert!(run(&broker, "add_user", &["bob", "one"]).ok);
        assert!(run(&broker, "change_password", &["bob", "two"]).ok);
        assert_eq!(
            run(&broker, "authenticate_user", &["bob", "two"])
                .message
                .as_deref(),
            Some("Success")
        );
        let refused = run(&broker, "authenticate_user", &["bob", "one"]);
        assert_eq!(
            (refused.failure, refused.error.as_deref()),
            (
                Some(Failure::DataErr),
                Some(
                    "Error: failed to authenticate user \"bob\"\nuser 'bob' - invalid credentials"
                )
            )
        );
        assert!(run(&broker, "delete_user", &["bob"]).ok);
        assert!(!run(&broker, "authenticate_user", &["bob", "two"]).ok);
    }

    #[test]
    fn a_blank_password_is_none_to_log_in_with() {
        let broker = broker();
        assert!(run(&broker, "add_user", &["carol", ""]).ok);
        assert!(broker.users.authenticate("carol", "").is_err());
        let refused = run(&broker, "authenticate_user", &["carol", ""]);
        assert_eq!(
            refused.error.as_deref(),
            Some(
                "Error: failed to authenticate user \"carol\"\nuser 'carol' attempted to log in \
                 with a blank password, which is prohibited by the internal authN backend."
            )
        );
        assert!(run(&broker, "change_password", &["guest", ""]).ok);
        assert!(broker.users.authenticate("guest", "guest").is_err());
        assert!(broker.users.authenticate("guest", "").is_err());
    }
}
