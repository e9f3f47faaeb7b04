//! The SASL mechanisms clients log in with.

use bytes::Bytes;
use rmqd_codec::{FieldTable, FieldValue};

use super::LoginError;

pub const MECHANISMS: &str = "AMQPLAIN PLAIN";

/// PLAIN (RFC 4616): `authzid \0 authcid \0 password`.
pub(super) fn parse_plain(response: &[u8]) -> Result<(String, String), LoginError> {
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
pub(super) fn parse_amqplain(response: &Bytes) -> Result<(String, String), LoginError> {
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
