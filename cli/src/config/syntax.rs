//! rabbitmq.conf's line format (cuttlefish's): `key = value` per line, `#` to the end of the
//! line is a comment, blank lines are ignored. As in RabbitMQ, a `#` inside a value starts a
//! comment too: there is no quoting or escaping.

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based.
    pub line: usize,
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct SyntaxError {
    pub line: usize,
    pub problem: String,
}

/// The file's entries in order; the first malformed line is an error.
pub fn parse(text: &str) -> Result<Vec<Entry>, SyntaxError> {
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
        if content.is_empty() {
            continue;
        }
        let error = |problem: String| SyntaxError { line, problem };
        let Some((key, value)) = content.split_once('=') else {
            // The line itself is not echoed: it may be a password missing its key.
            return Err(error("expected `key = value`, found no '='".to_string()));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(error("a key is missing before '='".to_string()));
        }
        if let Some(bad) = key
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(error(format!(
                "'{key}' is not a key: '{bad}' is not allowed in keys"
            )));
        }
        if key.split('.').any(str::is_empty) {
            return Err(error(format!(
                "'{key}' is not a key: empty part between dots"
            )));
        }
        if value.is_empty() {
            return Err(error(format!("{key} has no value")));
        }
        entries.push(Entry {
            line,
            key: key.to_string(),
            value: value.to_string(),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_and_values_skipping_comments_and_blank_lines() {
        let text = "# RabbitMQ-style\n\nlisteners.tcp.default = 5673\n  default_user=admin  \n\
                    heartbeat = 30 # seconds\n";
        let entries = parse(text).unwrap();
        let pairs: Vec<_> = entries
            .iter()
            .map(|e| (e.line, e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                (3, "listeners.tcp.default", "5673"),
                (4, "default_user", "admin"),
                (5, "heartbeat", "30"),
            ]
        );
    }

    #[test]
    fn a_hash_in_a_value_starts_a_comment_as_in_rabbitmq() {
        let entries = parse("default_pass = abc#def\n").unwrap();
        assert_eq!(entries[0].value, "abc");
    }

    #[test]
    fn values_keep_inner_equals_signs_and_spaces() {
        let entries = parse("cluster_name = a = b c\n").unwrap();
        assert_eq!(entries[0].value, "a = b c");
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let err = parse("heartbeat = 10\nheartbeat 10\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.problem.contains("expected `key = value`"), "{err}");
        assert_eq!(parse("\n\n= 5\n").unwrap_err().line, 3);
        assert!(
            parse("heartbeat =\n")
                .unwrap_err()
                .problem
                .contains("no value")
        );
        assert!(
            parse("heart beat = 1\n")
                .unwrap_err()
                .problem
                .contains("not a key")
        );
        assert!(
            parse("log..level = info\n")
                .unwrap_err()
                .problem
                .contains("empty part")
        );
    }
}
