//! The maps and sets of this crate. Routing keys, binding keys and destination names all come
//! from peers, so the hasher must be seeded at random to keep a peer from choosing keys that
//! collide. SipHash, std's default, is seeded so but slow on keys as short as words and queue
//! names, and showed as a large share of routing time in profiles; foldhash is seeded per
//! process and per map and hashes short keys several times faster.
//!
//! Its resistance is the minimal kind: it defeats collisions computed in advance, not an
//! attacker who can measure the broker's hash tables long enough to recover the seed.

pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
