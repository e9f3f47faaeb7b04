use std::collections::HashMap;
use std::time::Duration;

use super::*;

fn file(text: &str) -> Settings {
    parse_file(Path::new("rmqd.conf"), text).unwrap()
}

fn env(vars: &[(&str, &str)]) -> Settings {
    let vars: HashMap<String, OsString> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    from_env(|name| vars.get(name).cloned()).unwrap()
}

fn flags(pairs: &[(&str, &str)]) -> Settings {
    let mut settings = Settings::default();
    for (key, value) in pairs {
        settings.apply(key, value).unwrap();
    }
    settings
}

fn machine() -> Machine {
    Machine {
        total_memory: 8 << 30,
        default_data_dir: PathBuf::from("/var/lib/rmqd"),
    }
}

fn resolve_layers(layers: Layers) -> Resolved {
    resolve(&layers, &ListenerFlags::default(), false, machine())
}

#[test]
fn errors_name_the_file_the_line_and_the_problem() {
    let text = "# comment\nheartbeat = 30\n\nheartbeats = 30\n";
    let err = parse_file(Path::new("/etc/rmqd/rmqd.conf"), text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/rmqd/rmqd.conf:4: unknown key 'heartbeats'"
    );
    let err = parse_file(Path::new("a.conf"), "channel_max = lots\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "a.conf:1: channel_max = lots: expected a whole number from 0 to 65535"
    );
    let err = parse_file(Path::new("a.conf"), "heartbeat\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "a.conf:1: expected `key = value`, found no '='"
    );
}

#[test]
fn a_bad_line_does_not_echo_a_password() {
    let err = parse_file(Path::new("a.conf"), "default_pass = s3cret\nx = 1\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "a.conf:2: unknown key 'x'",
        "only the bad line is named"
    );
    let err = parse_file(Path::new("a.conf"), "default_pass s3cret\n").unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[test]
fn environment_errors_name_the_variable() {
    let err =
        from_env(|name| (name == "RMQD_HEARTBEAT").then(|| OsString::from("soon"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable RMQD_HEARTBEAT=soon: expected a whole number from 0 to 65535"
    );
}

#[test]
fn nothing_given_means_rabbitmqs_defaults() {
    let resolved = resolve_layers(Layers::default());
    assert_eq!(
        resolved.listeners,
        [("default".to_string(), "0.0.0.0:5672".parse().unwrap())]
    );
    assert_eq!(resolved.setup.default_user, "guest");
    assert_eq!(resolved.setup.default_pass, "guest");
    assert_eq!(resolved.setup.loopback_users, ["guest"]);
    assert!(resolved.password_shown, "guest/guest is no secret");
    assert_eq!(resolved.broker.heartbeat, 60);
    assert_eq!(resolved.broker.disk_free_limit, 50_000_000);
    assert_eq!(
        resolved.broker.consumer_timeout,
        Some(Duration::from_secs(1800))
    );
    assert_eq!(resolved.log_level, LogLevel::Info);
    assert_eq!(resolved.data_dir, Some(PathBuf::from("/var/lib/rmqd")));
    assert_eq!(
        resolved.ctl_socket,
        Some(PathBuf::from("/var/lib/rmqd/rmqd.sock"))
    );
}

#[test]
fn the_file_sets_what_it_names() {
    let resolved = resolve_layers(Layers {
        file: file(
            "listeners.tcp.default = 127.0.0.1:5673\n\
             default_user = admin\ndefault_pass = s3cret\ndefault_vhost = prod\n\
             loopback_users = none\n\
             vm_memory_high_watermark.relative = 0.25\n\
             disk_free_limit.relative = 1.5\n\
             heartbeat = 30\nframe_max = 131072\nchannel_max = 128\n\
             max_message_size = 16777216\nconsumer_timeout = 900000\n\
             log.level = warning\ndata_dir = /srv/rmqd\nctl_socket = /run/rmqd/ctl.sock\n\
             load_definitions = /etc/rmqd/definitions.json\n",
        ),
        ..Layers::default()
    });
    assert_eq!(
        resolved.listeners,
        [("default".to_string(), "127.0.0.1:5673".parse().unwrap())]
    );
    assert_eq!(
        (
            resolved.setup.default_user.as_str(),
            resolved.setup.default_pass.as_str()
        ),
        ("admin", "s3cret")
    );
    assert_eq!(resolved.setup.default_vhost, "prod");
    assert!(resolved.setup.loopback_users.is_empty());
    assert!(
        !resolved.password_shown,
        "a password from a file stays out of the URL"
    );
    assert_eq!(resolved.broker.memory_high_watermark, 2 << 30);
    assert_eq!(resolved.broker.disk_free_limit, 12 << 30);
    assert_eq!(resolved.broker.heartbeat, 30);
    assert_eq!(resolved.broker.frame_max, 131_072);
    assert_eq!(resolved.broker.channel_max, 128);
    assert_eq!(resolved.broker.max_message_size, 16 << 20);
    assert_eq!(
        resolved.broker.consumer_timeout,
        Some(Duration::from_secs(900))
    );
    assert_eq!(resolved.log_level, LogLevel::Warning);
    assert_eq!(resolved.data_dir, Some(PathBuf::from("/srv/rmqd")));
    assert_eq!(
        resolved.ctl_socket,
        Some(PathBuf::from("/run/rmqd/ctl.sock"))
    );
    assert_eq!(
        resolved.definitions,
        [PathBuf::from("/etc/rmqd/definitions.json")]
    );
}

#[test]
fn the_environment_overrides_the_file_and_flags_override_both() {
    let layers = Layers {
        file: file("heartbeat = 10\ndefault_user = from-file\nchannel_max = 7\nframe_max = 8192\n"),
        env: env(&[
            ("RMQD_HEARTBEAT", "20"),
            ("RMQD_DEFAULT_USER", "from-env"),
            ("RMQD_CHANNEL_MAX", "9"),
        ]),
        flags: flags(&[("heartbeat", "30")]),
    };
    let resolved = resolve_layers(layers);
    assert_eq!(resolved.broker.heartbeat, 30, "flag over env over file");
    assert_eq!(resolved.setup.default_user, "from-env", "env over file");
    assert_eq!(resolved.broker.channel_max, 9, "env over file");
    assert_eq!(resolved.broker.frame_max, 8192, "file over default");
}

#[test]
fn a_higher_layers_limit_replaces_the_lower_ones_whatever_its_form() {
    let layers = Layers {
        file: file("vm_memory_high_watermark.relative = 0.5\n"),
        env: env(&[("RMQD_VM_MEMORY_HIGH_WATERMARK_ABSOLUTE", "1GB")]),
        ..Layers::default()
    };
    assert_eq!(
        resolve_layers(layers).broker.memory_high_watermark,
        1_000_000_000
    );
}

#[test]
fn only_a_password_from_the_command_line_is_shown() {
    let shown = |layers: Layers| resolve_layers(layers).password_shown;
    assert!(!shown(Layers {
        env: env(&[("RMQD_DEFAULT_PASS", "x")]),
        ..Layers::default()
    }));
    assert!(shown(Layers {
        file: file("default_pass = x\n"),
        flags: flags(&[("default_pass", "y")]),
        ..Layers::default()
    }));
    assert!(
        shown(Layers {
            file: file("default_user = admin\n"),
            ..Layers::default()
        }),
        "the default password is no secret"
    );
}

#[test]
fn port_and_bind_flags_change_the_default_listener_only() {
    let layers = Layers {
        file: file("listeners.tcp.other = 127.0.0.1:5673\nlisteners.tcp.default = 10.0.0.1:5672\n"),
        env: env(&[("RMQD_LISTENERS_TCP_DEFAULT", "127.0.0.2:5674")]),
        ..Layers::default()
    };
    let addrs = |flags: ListenerFlags| -> Vec<String> {
        resolve(&layers, &flags, false, machine())
            .listeners
            .iter()
            .map(|(name, addr)| format!("{name}={addr}"))
            .collect()
    };
    assert_eq!(
        addrs(ListenerFlags::default()),
        ["default=127.0.0.2:5674", "other=127.0.0.1:5673"],
        "the environment replaces the file's default listener; the default comes first"
    );
    assert_eq!(
        addrs(ListenerFlags {
            port: Some(0),
            bind: None
        }),
        ["default=127.0.0.2:0", "other=127.0.0.1:5673"]
    );
    assert_eq!(
        addrs(ListenerFlags {
            port: None,
            bind: Some("::1".parse().unwrap())
        }),
        ["default=[::1]:5674", "other=127.0.0.1:5673"]
    );
}

#[test]
fn named_listeners_without_a_default_are_all_there_is() {
    let layers = Layers {
        file: file("listeners.tcp.local = 127.0.0.1:5672\nlisteners.tcp.local_v6 = ::1:5672\n"),
        ..Layers::default()
    };
    let listeners = resolve_layers(layers).listeners;
    let names: Vec<_> = listeners.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["local", "local_v6"]);
}

#[test]
fn ephemeral_wins_over_any_data_dir() {
    let layers = Layers {
        file: file("data_dir = /srv/rmqd\n"),
        ..Layers::default()
    };
    let resolved = resolve(&layers, &ListenerFlags::default(), true, machine());
    assert_eq!(resolved.data_dir, None);
    assert_eq!(
        resolved.ctl_socket, None,
        "no data dir, no socket unless named"
    );
}

#[test]
fn the_file_is_chosen_by_flag_then_environment() {
    assert_eq!(
        choose_file(Some(Path::new("a.conf")), Some("b.conf".into())),
        Some(PathBuf::from("a.conf"))
    );
    assert_eq!(
        choose_file(None, Some("b.conf".into())),
        Some(PathBuf::from("b.conf"))
    );
    let missing = read_file(Path::new("/nonexistent/rmqd.conf")).unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("cannot read the config file /nonexistent/rmqd.conf:"),
        "{missing}"
    );
}

#[test]
fn the_example_file_documents_every_key_with_a_value_rmqd_accepts() {
    let example = include_str!("../../../packaging/rmqd.conf.example");
    // Settings are commented out with one `#`; prose uses `##`.
    let uncommented: String = example
        .lines()
        .filter_map(|line| line.strip_prefix("# "))
        .map(|line| format!("{line}\n"))
        .collect();
    let settings = parse_file(Path::new("rmqd.conf.example"), &uncommented).unwrap();
    assert_ne!(settings, Settings::default());
    for key in SCALAR_KEYS {
        assert!(
            uncommented
                .lines()
                .any(|l| l.starts_with(&format!("{key} ="))),
            "{key} is not in the example"
        );
    }
}

#[test]
fn ctl_looks_for_the_socket_where_the_daemon_opens_it() {
    let layers = Layers {
        file: file("data_dir = /srv/rmqd\n"),
        ..Layers::default()
    };
    assert_eq!(
        ctl_socket(&layers, Path::new("/var/lib/rmqd")),
        PathBuf::from("/srv/rmqd/rmqd.sock"),
        "in the data dir a layer names"
    );
    let layers = Layers {
        env: env(&[("RMQD_CTL_SOCKET", "/run/rmqd/ctl.sock")]),
        ..layers
    };
    assert_eq!(
        ctl_socket(&layers, Path::new("/var/lib/rmqd")),
        PathBuf::from("/run/rmqd/ctl.sock"),
        "a socket a layer names wins over the data dir"
    );
    assert_eq!(
        resolve_layers(layers).ctl_socket,
        Some(PathBuf::from("/run/rmqd/ctl.sock"))
    );
}

#[test]
fn a_bad_environment_variable_leaves_the_others_to_ctl() {
    let mut skipped = Vec::new();
    let settings = from_env_skipping(
        |name| match name {
            "RMQD_HEARTBEAT" => Some("soon".into()),
            "RMQD_CTL_SOCKET" => Some("/run/rmqd/ctl.sock".into()),
            _ => None,
        },
        |err| skipped.push(err.to_string()),
    );
    assert_eq!(
        settings.ctl_socket,
        Some(PathBuf::from("/run/rmqd/ctl.sock"))
    );
    assert_eq!(
        skipped,
        ["environment variable RMQD_HEARTBEAT=soon: expected a whole number from 0 to 65535"]
    );
}
