//! Server-generated names: `amq.gen-…` queues and `amq.ctag-…` consumer tags, unique and
//! unguessable like RabbitMQ's (22 characters of URL-safe base64 from 128 random bits).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use rmqd_codec::ShortStr;

static COUNTER: AtomicU64 = AtomicU64::new(0);

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn random_u64() -> u64 {
    // RandomState is seeded from the OS once per process and varies per instance; mixing in a
    // counter makes every call distinct.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// A copy of a name that owns its bytes. Names decoded from a frame are slices of the read
/// buffer; anything that outlives the frame (a queue, a binding, a consumer tag) must not keep
/// that whole buffer alive.
pub(crate) fn owned(name: &ShortStr) -> ShortStr {
    ShortStr::new(bytes::Bytes::copy_from_slice(name.as_bytes())).unwrap_or_default()
}

pub(crate) fn server_named(prefix: &str) -> ShortStr {
    let bits = (u128::from(random_u64()) << 64) | u128::from(random_u64());
    let mut name = String::with_capacity(prefix.len() + 22);
    name.push_str(prefix);
    for i in 0..22 {
        name.push(char::from(ALPHABET[((bits >> (i * 6)) & 63) as usize]));
    }
    ShortStr::truncating(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_distinct() {
        let a = server_named("amq.gen-");
        let b = server_named("amq.gen-");
        assert!(a.as_bytes().starts_with(b"amq.gen-"));
        assert_eq!(a.len(), 8 + 22);
        assert_ne!(a, b);
    }
}
