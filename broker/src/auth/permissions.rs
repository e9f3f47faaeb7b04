//! Per-vhost permissions: RabbitMQ's configure, write and read regular expressions, and the
//! check of a resource name against them.

use std::fmt;

use regex::bytes::{Regex, RegexBuilder};

/// The three kinds of access RabbitMQ grants per vhost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Declaring and deleting exchanges and queues.
    Configure,
    /// Publishing to an exchange, binding into a queue or exchange.
    Write,
    /// Consuming from, getting from or purging a queue; binding from an exchange.
    Read,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Configure => "configure",
            Access::Write => "write",
            Access::Read => "read",
        })
    }
}

/// A permission pattern that is not a regular expression this broker can run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {access} permission '{pattern}': {reason}")]
pub struct InvalidPermission {
    pub access: Access,
    pub pattern: String,
    pub reason: String,
}

/// One compiled pattern; `None` matches no name at all.
#[derive(Clone)]
struct Pattern(Option<Regex>);

impl Pattern {
    /// RabbitMQ reads an empty pattern as `^$`, which no resource name matches: "nothing".
    fn compile(access: Access, pattern: &str) -> Result<Pattern, InvalidPermission> {
        if pattern.is_empty() {
            return Ok(Pattern(None));
        }
        // Byte semantics, as Erlang's `re` has without its `unicode` option: names need not be
        // UTF-8, and `.` is one byte. Non-ASCII literals still match their UTF-8 bytes.
        RegexBuilder::new(pattern)
            .unicode(false)
            .build()
            .map(|re| Pattern(Some(re)))
            .map_err(|e| InvalidPermission {
                access,
                pattern: pattern.to_string(),
                reason: e.to_string(),
            })
    }

    /// Anywhere in the name, like `re:run`: `conf` allows `myconfig`; anchors must be explicit.
    fn matches(&self, name: &[u8]) -> bool {
        self.0.as_ref().is_some_and(|re| re.is_match(name))
    }
}

/// What a user may do in one vhost, as RabbitMQ's regular expressions over resource names.
///
/// The strings are the patterns as given, for listings and exports; checks use the patterns
/// compiled when the value was made, so a change means making new `Permissions`.
#[derive(Clone)]
pub struct Permissions {
    pub configure: String,
    pub write: String,
    pub read: String,
    compiled: [Pattern; 3],
}

impl Permissions {
    /// Patterns from a file or an earlier run, taken as they are: one that does not compile
    /// matches nothing (it grants less, never more) and is logged.
    pub fn new(configure: &str, write: &str, read: &str) -> Permissions {
        let compile = |access, pattern| {
            Pattern::compile(access, pattern).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "permission pattern matches nothing");
                Pattern(None)
            })
        };
        Permissions {
            configure: configure.to_string(),
            write: write.to_string(),
            read: read.to_string(),
            compiled: [
                compile(Access::Configure, configure),
                compile(Access::Write, write),
                compile(Access::Read, read),
            ],
        }
    }

    /// Patterns a client asks to set: refused, naming the first bad one, unless all compile.
    pub fn parse(
        configure: &str,
        write: &str,
        read: &str,
    ) -> Result<Permissions, InvalidPermission> {
        Ok(Permissions {
            configure: configure.to_string(),
            write: write.to_string(),
            read: read.to_string(),
            compiled: [
                Pattern::compile(Access::Configure, configure)?,
                Pattern::compile(Access::Write, write)?,
                Pattern::compile(Access::Read, read)?,
            ],
        })
    }

    /// `".*" ".*" ".*"`: everything, as `rabbitmqctl set_permissions` is usually given.
    pub fn full() -> Permissions {
        Self::new(".*", ".*", ".*")
    }

    /// Whether these permissions grant `access` to the exchange or queue called `name`.
    pub fn allows(&self, access: Access, name: &[u8]) -> bool {
        let pattern = match access {
            Access::Configure => &self.compiled[0],
            Access::Write => &self.compiled[1],
            Access::Read => &self.compiled[2],
        };
        pattern.matches(name)
    }
}

/// Equal when the patterns are: the compiled forms follow from them.
impl PartialEq for Permissions {
    fn eq(&self, other: &Self) -> bool {
        (&self.configure, &self.write, &self.read) == (&other.configure, &other.write, &other.read)
    }
}

impl Eq for Permissions {}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permissions")
            .field("configure", &self.configure)
            .field("write", &self.write)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn narrow() -> Permissions {
        Permissions::parse("^conf", "^write", "^read").unwrap()
    }

    #[test]
    fn each_access_uses_its_own_pattern() {
        let p = narrow();
        assert!(p.allows(Access::Configure, b"conf-q"));
        assert!(!p.allows(Access::Configure, b"write-q"));
        assert!(p.allows(Access::Write, b"write-q"));
        assert!(!p.allows(Access::Write, b"read-q"));
        assert!(p.allows(Access::Read, b"read-q"));
        assert!(!p.allows(Access::Read, b"conf-q"));
    }

    #[test]
    fn a_pattern_matches_anywhere_in_the_name_unless_anchored() {
        let p = Permissions::parse("conf", "write$", "^read$").unwrap();
        assert!(p.allows(Access::Configure, b"myconfig"));
        assert!(p.allows(Access::Write, b"overwrite"));
        assert!(!p.allows(Access::Write, b"writes"));
        assert!(p.allows(Access::Read, b"read"));
        assert!(!p.allows(Access::Read, b"reader"));
    }

    #[test]
    fn an_empty_pattern_matches_nothing_not_even_the_empty_name() {
        let p = Permissions::parse("", "", ".*").unwrap();
        assert!(!p.allows(Access::Configure, b""));
        assert!(!p.allows(Access::Configure, b"anything"));
        assert!(!p.allows(Access::Write, b"amq.default"));
        assert!(p.allows(Access::Read, b""));
    }

    #[test]
    fn full_allows_everything() {
        let p = Permissions::full();
        for access in [Access::Configure, Access::Write, Access::Read] {
            assert!(p.allows(access, b"amq.default"));
            assert!(p.allows(access, b""));
            assert!(p.allows(access, "caf\u{e9}".as_bytes()));
        }
    }

    #[test]
    fn server_named_queues_by_their_prefix() {
        let p = Permissions::parse(r"^amq\.gen.*", "", "").unwrap();
        assert!(p.allows(Access::Configure, b"amq.gen-JzTY20BRgKO-HjmUJj0wLg"));
        assert!(!p.allows(Access::Configure, b"amq.ge"));
        assert!(!p.allows(Access::Configure, b"xamq.gen-1"));
        assert!(!p.allows(Access::Configure, b"amqXgen-1"));
    }

    #[test]
    fn names_are_matched_as_bytes() {
        let p = Permissions::parse("^caf\u{e9}$", "^a.b$", "^.$").unwrap();
        assert!(p.allows(Access::Configure, "caf\u{e9}".as_bytes()));
        // `.` is one byte, as in Erlang's re without `unicode`; invalid UTF-8 is a name too.
        assert!(p.allows(Access::Write, b"a\xffb"));
        assert!(!p.allows(Access::Read, "\u{e9}".as_bytes()));
    }

    #[test]
    fn parse_names_the_invalid_pattern() {
        let err = Permissions::parse(".*", "(unclosed", ".*").unwrap_err();
        assert_eq!(err.access, Access::Write);
        assert_eq!(err.pattern, "(unclosed");
        assert!(
            err.to_string()
                .starts_with("invalid write permission '(unclosed': "),
            "{err}"
        );
    }

    #[test]
    fn new_makes_an_invalid_pattern_match_nothing() {
        let p = Permissions::new("[", ".*", "(?<=x)y");
        assert_eq!(p.configure, "[");
        assert!(!p.allows(Access::Configure, b"["));
        assert!(!p.allows(Access::Configure, b""));
        assert!(p.allows(Access::Write, b"anything"));
        // Look-behind is PCRE's, not ours: refused rather than guessed at.
        assert!(!p.allows(Access::Read, b"xy"));
    }

    #[test]
    fn equal_when_the_patterns_are() {
        assert_eq!(Permissions::new(".*", ".*", ".*"), Permissions::full());
        assert_ne!(Permissions::new(".*", ".*", ""), Permissions::full());
        assert_eq!(
            format!("{:?}", Permissions::new("a", "b", "c")),
            r#"Permissions { configure: "a", write: "b", read: "c", .. }"#
        );
    }
}
