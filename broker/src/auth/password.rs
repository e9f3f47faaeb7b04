//! Passwords as RabbitMQ keeps them: `salt ++ H(salt ++ utf8 password)` with a 4-byte random
//! salt, where `H` is the user's hashing algorithm. The same bytes, base64-encoded, are the
//! `password_hash` of a definitions file, so users move between RabbitMQ and rmqd with their
//! passwords intact.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256, Sha512};

pub(crate) const SALT_LEN: usize = 4;

/// RabbitMQ's password hashing modules, by the names definitions files give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashingAlgorithm {
    /// RabbitMQ's default since 3.6.
    #[default]
    Sha256,
    Sha512,
    /// What RabbitMQ 3.5 and older used; still found in old definitions files.
    Md5,
}

impl HashingAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            HashingAlgorithm::Sha256 => "rabbit_password_hashing_sha256",
            HashingAlgorithm::Sha512 => "rabbit_password_hashing_sha512",
            HashingAlgorithm::Md5 => "rabbit_password_hashing_md5",
        }
    }

    pub fn from_name(name: &str) -> Option<HashingAlgorithm> {
        [
            HashingAlgorithm::Sha256,
            HashingAlgorithm::Sha512,
            HashingAlgorithm::Md5,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }

    fn digest_len(self) -> usize {
        match self {
            HashingAlgorithm::Sha256 => 32,
            HashingAlgorithm::Sha512 => 64,
            HashingAlgorithm::Md5 => 16,
        }
    }

    fn salted_digest(self, salt: &[u8], password: &[u8]) -> Vec<u8> {
        match self {
            HashingAlgorithm::Sha256 => Sha256::new()
                .chain_update(salt)
                .chain_update(password)
                .finalize()
                .to_vec(),
            HashingAlgorithm::Sha512 => Sha512::new()
                .chain_update(salt)
                .chain_update(password)
                .finalize()
                .to_vec(),
            HashingAlgorithm::Md5 => md5::digest(&[salt, password].concat()).to_vec(),
        }
    }
}

impl fmt::Display for HashingAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a password is checked against: `salt ++ digest`, or nothing for a user who cannot log
/// in with a password (RabbitMQ's `clear_password`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    algorithm: HashingAlgorithm,
    salted: Vec<u8>,
}

impl PasswordHash {
    /// Hashes `password` with RabbitMQ's default algorithm and a fresh salt.
    pub fn new(password: &str) -> PasswordHash {
        Self::with_salt(HashingAlgorithm::default(), random_salt(), password)
    }

    /// The hash a user given `password` gets: none for a blank one, which RabbitMQ takes to
    /// mean the user cannot log in with a password at all.
    pub fn of(password: &str) -> PasswordHash {
        match password {
            "" => Self::none(),
            password => Self::new(password),
        }
    }

    pub(crate) fn with_salt(
        algorithm: HashingAlgorithm,
        salt: [u8; SALT_LEN],
        password: &str,
    ) -> Self {
        let mut salted = salt.to_vec();
        salted.extend(algorithm.salted_digest(&salt, password.as_bytes()));
        PasswordHash { algorithm, salted }
    }

    /// No password: every password is refused.
    pub fn none() -> PasswordHash {
        PasswordHash {
            algorithm: HashingAlgorithm::default(),
            salted: Vec::new(),
        }
    }

    /// A hash as definitions files carry it; the empty string means no password.
    pub fn from_base64(encoded: &str, algorithm: HashingAlgorithm) -> Result<Self, String> {
        let salted = BASE64
            .decode(encoded.trim())
            .map_err(|e| format!("not base64 ({e})"))?;
        let expected = SALT_LEN + algorithm.digest_len();
        if !salted.is_empty() && salted.len() != expected {
            return Err(format!(
                "{} bytes where {algorithm} hashes are {expected} (a {SALT_LEN}-byte salt and \
                 a {}-byte digest)",
                salted.len(),
                algorithm.digest_len()
            ));
        }
        Ok(PasswordHash { algorithm, salted })
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.salted)
    }

    pub fn algorithm(&self) -> HashingAlgorithm {
        self.algorithm
    }

    pub fn is_none(&self) -> bool {
        self.salted.is_empty()
    }

    pub fn verify(&self, password: &str) -> bool {
        let Some((salt, digest)) = self.salted.split_at_checked(SALT_LEN) else {
            return false;
        };
        if digest.is_empty() {
            return false;
        }
        let computed = self.algorithm.salted_digest(salt, password.as_bytes());
        constant_time_eq(&computed, digest)
    }
}

impl fmt::Debug for PasswordHash {
    // Hashes stay out of logs: a leaked hash can be brute-forced offline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash")
            .field("algorithm", &self.algorithm)
            .field("set", &!self.is_none())
            .finish()
    }
}

/// Compares without stopping at the first difference, so the time taken does not tell an
/// attacker how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_salt() -> [u8; SALT_LEN] {
    let mut salt = [0; SALT_LEN];
    if getrandom::fill(&mut salt).is_err() {
        // A salt only has to differ between hashes, not be secret: without the OS source, the
        // clock and a counter still make it unique.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mixed = nanos ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(32);
        salt.copy_from_slice(&mixed.to_le_bytes()[..SALT_LEN]);
    }
    salt
}

/// MD5 (RFC 1321), only to check passwords hashed by RabbitMQ 3.5 and older: no dependency
/// for one legacy scheme, and never used to hash anything new.
mod md5 {
    const SHIFTS: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];

    pub(super) fn digest(input: &[u8]) -> [u8; 16] {
        // K[i] = floor(|sin(i + 1)| * 2^32), as the RFC defines it.
        let k: [u32; 64] =
            std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32);
        let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
        let mut message = input.to_vec();
        message.push(0x80);
        while message.len() % 64 != 56 {
            message.push(0);
        }
        message.extend_from_slice(&((input.len() as u64).wrapping_mul(8)).to_le_bytes());
        for block in message.chunks_exact(64) {
            let words: [u32; 16] = std::array::from_fn(|i| {
                u32::from_le_bytes([
                    block[4 * i],
                    block[4 * i + 1],
                    block[4 * i + 2],
                    block[4 * i + 3],
                ])
            });
            let [mut a, mut b, mut c, mut d] = state;
            for i in 0..64 {
                let (f, g) = match i / 16 {
                    0 => ((b & c) | (!b & d), i),
                    1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                    2 => (b ^ c ^ d, (3 * i + 5) % 16),
                    _ => (c ^ (b | !d), (7 * i) % 16),
                };
                let rotated = a
                    .wrapping_add(f)
                    .wrapping_add(k[i])
                    .wrapping_add(words[g])
                    .rotate_left(SHIFTS[i]);
                (a, b, c, d) = (d, b.wrapping_add(rotated), b, c);
            }
            for (s, v) in state.iter_mut().zip([a, b, c, d]) {
                *s = s.wrapping_add(v);
            }
        }
        let mut out = [0; 16];
        for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hash_is_rabbitmqs_salt_then_digest() {
        // Salt 908dc60a; digest = SHA-256(salt ++ "secret"), computed independently (Python
        // hashlib) and matching rabbit_password's scheme.
        let hash =
            PasswordHash::with_salt(HashingAlgorithm::Sha256, [0x90, 0x8d, 0xc6, 0x0a], "secret");
        assert_eq!(
            hash.to_base64(),
            "kI3GCqG+cq65rBQ9tiUUCREygKhmilKrZEWKSz+H0FJ1fk4/"
        );
    }

    #[test]
    fn hashes_made_by_rabbitmq_verify() {
        // `rabbitmqctl eval 'base64:encode(rabbit_password:hash(Module, <<"secret">>)).'` on
        // RabbitMQ 3.10.8, one per hashing module.
        let made_by_rabbitmq = [
            (
                HashingAlgorithm::Sha256,
                "USWoFyZ4dNg1UDuWKYmyEysiNvJDoqSyLVtCJ2ppU/+4siSE",
            ),
            (
                HashingAlgorithm::Sha512,
                "JwxxMxVWyOJXQpLFyHff36lcX+n4ZonkCaXfgSle7BdPJyueMsczS/mkfDmUddgEC0wlE9bDM5sXnpMtlh7pjDYUheg=",
            ),
            (HashingAlgorithm::Md5, "SDBABfZXQdG/vD7ZOSfuraVVMy0="),
        ];
        for (algorithm, encoded) in made_by_rabbitmq {
            let hash = PasswordHash::from_base64(encoded, algorithm).unwrap();
            assert!(hash.verify("secret"), "{algorithm}");
            assert!(!hash.verify("Secret"), "{algorithm}");
            assert_eq!(hash.to_base64(), encoded);
        }
    }

    #[test]
    fn new_passwords_are_salted_sha256() {
        let (a, b) = (PasswordHash::new("same"), PasswordHash::new("same"));
        assert_eq!(a.algorithm(), HashingAlgorithm::Sha256);
        assert_eq!(a.to_base64().len(), 48);
        assert_ne!(a.to_base64(), b.to_base64(), "salts differ");
        assert!(a.verify("same") && b.verify("same"));
    }

    #[test]
    fn hashing_algorithms_by_rabbitmq_module_name() {
        for algorithm in [
            HashingAlgorithm::Sha256,
            HashingAlgorithm::Sha512,
            HashingAlgorithm::Md5,
        ] {
            assert_eq!(
                HashingAlgorithm::from_name(algorithm.name()),
                Some(algorithm)
            );
        }
        assert_eq!(
            HashingAlgorithm::from_name("rabbit_password_hashing_sha1"),
            None
        );
    }

    #[test]
    fn md5_matches_rfc_1321_test_suite() {
        let hex = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let suite = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, expected) in suite {
            assert_eq!(hex(md5::digest(input.as_bytes())), expected, "{input:?}");
        }
    }

    #[test]
    fn password_hash_debug_does_not_show_the_hash() {
        let hash = PasswordHash::new("secret");
        let shown = format!("{hash:?}");
        assert!(!shown.contains(&hash.to_base64()[..8]), "{shown}");
        assert!(shown.contains("Sha256"), "{shown}");
    }
}
