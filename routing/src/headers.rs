//! Headers exchanges: a binding's arguments are a pattern for the message's headers property,
//! the routing key plays no part. Matching follows `rabbit_exchange_type_headers` up to
//! RabbitMQ 3.12 (3.13 rewrote it; see `header_eq`):
//!
//! * `x-match` picks `all` (the default, also for any value RabbitMQ would not accept), `any`,
//!   `all-with-x` or `any-with-x`;
//! * binding arguments whose key starts with `x-` are left out under `all` and `any`, kept under
//!   the `-with-x` modes; `x-match` itself is always left out;
//! * a kept argument matches when the headers hold its key and either its value is void
//!   (presence is enough) or the values are equal as `header_value_eq` decides;
//! * `all` needs every kept argument to match, so it matches everything when none is kept;
//!   `any` needs one, so it matches nothing when none is kept.
//!
//! RabbitMQ walks both tables sorted by key, pairing the n-th binding entry under a key with the
//! n-th header under that key. Without repeated keys that is a plain lookup; with them this code
//! pairs the same way, without sorting anything at routing time.

use std::hash::Hash;

use rmqd_codec::{FieldTable, FieldValue, ShortStr};

use crate::by_destination::ByDestination;
use crate::header_eq::header_value_eq;

pub(crate) fn route<D: Clone + Eq + Hash>(
    bindings: &ByDestination<D>,
    headers: Option<&FieldTable>,
    out: &mut Vec<D>,
) {
    let empty = FieldTable::new();
    let headers = headers.unwrap_or(&empty);
    for (dest, group) in bindings.groups() {
        if group.iter().any(|b| matches(b.args(), headers)) {
            out.push(dest.clone());
        }
    }
}

#[derive(Clone, Copy)]
enum Mode {
    All,
    Any,
    AllWithX,
    AnyWithX,
}

impl Mode {
    fn of(args: &FieldTable) -> Mode {
        match args.get("x-match") {
            Some(FieldValue::LongStr(mode)) => match &mode[..] {
                b"any" => Mode::Any,
                b"all-with-x" => Mode::AllWithX,
                b"any-with-x" => Mode::AnyWithX,
                _ => Mode::All,
            },
            _ => Mode::All,
        }
    }

    fn needs_all(self) -> bool {
        matches!(self, Mode::All | Mode::AllWithX)
    }

    fn considers(self, key: &ShortStr) -> bool {
        let key = key.as_bytes();
        key != b"x-match"
            && (!key.starts_with(b"x-") || matches!(self, Mode::AllWithX | Mode::AnyWithX))
    }
}

/// `args` must be sorted by key, as bindings store them.
fn matches(args: &FieldTable, headers: &FieldTable) -> bool {
    let mode = Mode::of(args);
    let mut previous: Option<&ShortStr> = None;
    let mut nth = 0;
    for (key, expected) in args.iter() {
        nth = if previous == Some(key) { nth + 1 } else { 0 };
        previous = Some(key);
        if !mode.considers(key) {
            continue;
        }
        let found = headers
            .iter()
            .filter(|(k, _)| *k == key)
            .nth(nth)
            .is_some_and(|(_, actual)| {
                matches!(expected, FieldValue::Void) || header_value_eq(expected, actual)
            });
        if found != mode.needs_all() {
            return found;
        }
    }
    mode.needs_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BindingTable;
    use crate::ExchangeKind;
    use crate::test_support::{bytes, key, table};

    /// Whether a message with `headers` reaches a queue bound with `args`.
    fn routes(args: &[(&str, FieldValue)], headers: Option<&[(&str, FieldValue)]>) -> bool {
        let mut bindings = BindingTable::new(ExchangeKind::Headers);
        bindings.bind(&key(""), &table(args), 1u32);
        let headers = headers.map(table);
        let mut out = Vec::new();
        bindings.route(b"", headers.as_ref(), &mut out);
        assert!(out.len() <= 1);
        out == [1]
    }

    fn mode(m: &str) -> (&str, FieldValue) {
        ("x-match", m.into())
    }

    #[test]
    fn all_is_the_default() {
        let args = [("a", 1.into()), ("b", 2.into())];
        assert!(routes(&args, Some(&[("a", 1.into()), ("b", 2.into())])));
        assert!(!routes(&args, Some(&[("a", 1.into())])));
    }

    #[test]
    fn all_requires_every_argument() {
        let args = [mode("all"), ("a", 1.into()), ("b", 2.into())];
        assert!(routes(
            &args,
            Some(&[("b", 2.into()), ("a", 1.into()), ("c", 3.into())])
        ));
        assert!(!routes(&args, Some(&[("a", 1.into()), ("b", 3.into())])));
        assert!(!routes(&args, Some(&[("b", 2.into())])));
    }

    #[test]
    fn any_requires_one_argument() {
        let args = [mode("any"), ("a", 1.into()), ("b", 2.into())];
        assert!(routes(&args, Some(&[("b", 2.into())])));
        assert!(routes(&args, Some(&[("a", 1.into()), ("b", 9.into())])));
        assert!(!routes(&args, Some(&[("a", 2.into()), ("b", 1.into())])));
        assert!(!routes(&args, Some(&[("c", 1.into())])));
    }

    #[test]
    fn all_without_considered_arguments_matches_everything() {
        assert!(routes(&[], None));
        assert!(routes(&[], Some(&[("a", 1.into())])));
        assert!(routes(&[mode("all"), ("x-a", 1.into())], None));
    }

    #[test]
    fn any_without_considered_arguments_matches_nothing() {
        assert!(!routes(&[mode("any")], Some(&[("a", 1.into())])));
        assert!(!routes(
            &[mode("any"), ("x-a", 1.into())],
            Some(&[("x-a", 1.into())])
        ));
        assert!(!routes(
            &[mode("any-with-x")],
            Some(&[("x-match", "any-with-x".into())])
        ));
    }

    #[test]
    fn x_arguments_are_ignored_under_all_and_any() {
        let headers: &[(&str, FieldValue)] = &[("a", 1.into())];
        assert!(routes(&[("a", 1.into()), ("x-b", 2.into())], Some(headers)));
        assert!(routes(
            &[mode("all"), ("a", 1.into()), ("x-", 2.into())],
            Some(headers)
        ));
        assert!(!routes(
            &[mode("any"), ("x-a", 1.into())],
            Some(&[("x-a", 1.into())])
        ));
        // Only the lowercase prefix is special.
        assert!(!routes(&[("X-b", 2.into())], Some(headers)));
    }

    #[test]
    fn x_arguments_count_under_with_x_modes() {
        let args = [mode("all-with-x"), ("a", 1.into()), ("x-b", 2.into())];
        assert!(!routes(&args, Some(&[("a", 1.into())])));
        assert!(routes(&args, Some(&[("a", 1.into()), ("x-b", 2.into())])));
        let args = [mode("any-with-x"), ("x-b", 2.into())];
        assert!(routes(&args, Some(&[("x-b", 2.into())])));
        assert!(!routes(&args, Some(&[("x-b", 3.into())])));
    }

    #[test]
    fn x_match_itself_is_never_a_condition() {
        assert!(routes(&[mode("all-with-x")], None));
        assert!(routes(
            &[mode("all-with-x")],
            Some(&[("x-match", "any".into())])
        ));
        assert!(!routes(
            &[mode("any-with-x")],
            Some(&[("x-match", "any-with-x".into())])
        ));
    }

    #[test]
    fn unrecognised_x_match_means_all() {
        for bogus in [
            mode("ANY"),
            mode("some"),
            ("x-match", bytes("any")),
            ("x-match", 1.into()),
        ] {
            let args = [bogus, ("a", 1.into()), ("b", 2.into())];
            assert!(!routes(&args, Some(&[("a", 1.into())])));
            assert!(routes(&args, Some(&[("a", 1.into()), ("b", 2.into())])));
        }
    }

    #[test]
    fn first_x_match_wins() {
        let args = [mode("any"), mode("all"), ("a", 1.into()), ("b", 2.into())];
        assert!(routes(&args, Some(&[("a", 1.into())])));
    }

    #[test]
    fn void_binding_value_means_presence() {
        let args = [("a", FieldValue::Void)];
        assert!(routes(&args, Some(&[("a", "anything".into())])));
        assert!(routes(&args, Some(&[("a", FieldValue::Void)])));
        assert!(!routes(&args, Some(&[("b", 1.into())])));
        assert!(routes(
            &[mode("any"), ("a", FieldValue::Void), ("b", 1.into())],
            Some(&[("a", 2.into())])
        ));
    }

    #[test]
    fn void_header_does_not_equal_a_value() {
        assert!(!routes(
            &[("a", 1.into())],
            Some(&[("a", FieldValue::Void)])
        ));
    }

    #[test]
    fn missing_headers_are_empty_headers() {
        assert!(!routes(&[("a", 1.into())], None));
        assert!(!routes(&[("a", FieldValue::Void)], None));
        assert!(!routes(&[mode("any"), ("a", 1.into())], None));
        assert!(routes(&[("x-a", 1.into())], None));
    }

    #[test]
    fn values_compare_as_erlang_does() {
        assert!(routes(
            &[("a", FieldValue::I32(1))],
            Some(&[("a", FieldValue::I64(1))])
        ));
        assert!(routes(
            &[("a", FieldValue::U8(1))],
            Some(&[("a", FieldValue::F64(1.0))])
        ));
        assert!(routes(
            &[("a", FieldValue::I64(5))],
            Some(&[("a", FieldValue::Timestamp(5))])
        ));
        assert!(routes(&[("a", "s".into())], Some(&[("a", bytes("s"))])));
        assert!(!routes(
            &[("a", true.into())],
            Some(&[("a", FieldValue::I32(1))])
        ));
        assert!(!routes(
            &[("a", "1".into())],
            Some(&[("a", FieldValue::I32(1))])
        ));
    }

    #[test]
    fn header_keys_match_byte_for_byte() {
        assert!(!routes(&[("a", 1.into())], Some(&[("A", 1.into())])));
        assert!(!routes(&[("a", 1.into())], Some(&[("a ", 1.into())])));
    }

    #[test]
    fn repeated_keys_pair_in_order() {
        // The n-th binding entry under a key meets the n-th header under it.
        let args = [("a", 1.into()), ("a", 2.into())];
        assert!(routes(&args, Some(&[("a", 1.into()), ("a", 2.into())])));
        assert!(!routes(&args, Some(&[("a", 2.into()), ("a", 1.into())])));
        assert!(!routes(&args, Some(&[("a", 1.into())])));
        // A lone binding entry meets the first header of its key, not any of them.
        assert!(routes(
            &[("a", 1.into())],
            Some(&[("a", 1.into()), ("a", 2.into())])
        ));
        assert!(!routes(
            &[("a", 2.into())],
            Some(&[("a", 1.into()), ("a", 2.into())])
        ));
        let any = [mode("any"), ("a", 9.into()), ("a", 2.into())];
        assert!(routes(&any, Some(&[("a", 1.into()), ("a", 2.into())])));
        assert!(!routes(&any, Some(&[("a", 2.into())])));
    }

    #[test]
    fn routing_key_is_ignored() {
        let mut bindings = BindingTable::new(ExchangeKind::Headers);
        bindings.bind(&key("only.this"), &table(&[("a", 1.into())]), 1u32);
        let headers = table(&[("a", 1.into())]);
        for routing_key in [&b""[..], b"only.this", b"other"] {
            let mut out = Vec::new();
            bindings.route(routing_key, Some(&headers), &mut out);
            assert_eq!(out, [1]);
        }
    }

    #[test]
    fn destination_with_several_matching_bindings_appears_once() {
        let mut bindings = BindingTable::new(ExchangeKind::Headers);
        assert!(bindings.bind(&key(""), &table(&[("a", 1.into())]), 1u32));
        assert!(bindings.bind(&key(""), &table(&[("b", 2.into())]), 1u32));
        assert!(bindings.bind(&key("k"), &table(&[("a", 1.into())]), 1u32));
        assert!(bindings.bind(&key(""), &table(&[("a", 1.into())]), 2u32));
        assert!(bindings.bind(&key(""), &table(&[("a", 2.into())]), 3u32));
        let mut out = Vec::new();
        bindings.route(
            b"",
            Some(&table(&[("a", 1.into()), ("b", 2.into())])),
            &mut out,
        );
        out.sort();
        assert_eq!(out, [1, 2]);
    }
}
