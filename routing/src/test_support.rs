//! Builders shared by the tests.

use rmqd_codec::{FieldTable, FieldValue, ShortStr};

pub(crate) fn key(s: &str) -> ShortStr {
    ShortStr::try_from(s).unwrap()
}

pub(crate) fn table(entries: &[(&str, FieldValue)]) -> FieldTable {
    entries.iter().map(|(k, v)| (key(k), v.clone())).collect()
}

pub(crate) fn bytes(s: &'static str) -> FieldValue {
    FieldValue::ByteArray(ShortStr::from_static(s).into_bytes())
}
