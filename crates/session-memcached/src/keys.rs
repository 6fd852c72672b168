//! Store keys to memcached keys, and exact expiry instants to what a
//! memcached item can hold.
//!
//! A memcached key is at most 250 bytes without spaces or control
//! characters; a store key is up to 255 bytes of any UTF-8 but NUL. The
//! memcached key of store key `k` is `<prefix><generation>:<encoded k>`:
//!
//! * `k<escaped>`: `k` with every byte outside `!`..=`~` and every `%`
//!   written as `%XX` (upper-case hex), when it fits;
//! * `h<sha256 hex>`: otherwise (a long key, or one of many escaped bytes).
//!
//! The tag letter keeps the two forms apart, percent-escaping is
//! one-to-one, and SHA-256 collisions are not known to exist: distinct
//! store keys get distinct memcached keys.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// memcached's longest key.
pub(crate) const MEMCACHED_MAX_KEY: usize = 250;

/// The most bytes `<generation>:` takes (`u64::MAX` has 20 digits).
const GENERATION_BYTES: usize = 21;

/// The memcached key of the namespace generation: `<prefix>gen`.
pub(crate) fn generation_key(prefix: &str) -> Vec<u8> {
    format!("{prefix}gen").into_bytes()
}

/// The memcached key of `key` in generation `generation`.
pub(crate) fn item_key(prefix: &str, generation: u64, key: &str) -> Vec<u8> {
    let mut out = format!("{prefix}{generation}:").into_bytes();
    let budget = MEMCACHED_MAX_KEY - prefix.len() - GENERATION_BYTES;
    let escaped_len: usize = key
        .bytes()
        .map(|b| if plain(b) { 1 } else { 3 })
        .sum::<usize>()
        + 1;
    if escaped_len <= budget {
        out.push(b'k');
        for b in key.bytes() {
            if plain(b) {
                out.push(b);
            } else {
                out.extend_from_slice(format!("%{b:02X}").as_bytes());
            }
        }
    } else {
        out.push(b'h');
        out.extend_from_slice(hex::encode(Sha256::digest(key.as_bytes())).as_bytes());
    }
    out
}

/// Bytes written as they are: printable ASCII but `%`.
fn plain(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'%'
}

/// How much longer than the exact expiry memcached keeps an item: its
/// clock counts whole seconds from a moment the client cannot see, so a
/// TTL of `n` seconds ends anywhere from `n - 2` to `n + 1` seconds later.
/// An item is removed by memcached 0 to 3 s after its exact expiry; reads
/// treat it as gone from the exact expiry on.
const BACKSTOP: u64 = 2;

/// Extra margin for TTLs over 30 days, which memcached takes as an absolute
/// unix time on the server's own clock.
const ABSOLUTE_MARGIN: u64 = 3600;

/// memcached reads a TTL over this many seconds as a unix timestamp.
const MAX_RELATIVE: u64 = 30 * 24 * 3600;

/// The expiry of a write: the exact instant (unix milliseconds, rounded up)
/// readers compare against, the TTL sent to memcached (seconds, later than
/// the exact instant), and the instant's low 32 bits for the item's client
/// flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expiry {
    /// Unix milliseconds.
    pub(crate) deadline_ms: u64,
    /// Seconds for memcached's `T` flag.
    pub(crate) ttl_secs: u32,
}

impl Expiry {
    /// The expiry of a write made now for `duration` (not zero).
    pub(crate) fn after(duration: Duration) -> Self {
        Self::after_at(duration, unix_now())
    }

    pub(crate) fn after_at(duration: Duration, now: Duration) -> Self {
        let deadline = now.saturating_add(duration);
        let deadline_ms = ceil_ms(deadline);
        let whole = duration
            .as_secs()
            .saturating_add(u64::from(duration.subsec_nanos() > 0));
        let mut ttl = whole.saturating_add(BACKSTOP);
        if ttl > MAX_RELATIVE {
            ttl = ttl.saturating_add(ABSOLUTE_MARGIN);
        }
        // memcached sends a TTL over 30 days as a 32-bit unix time: cut it
        // at 2106 (a duration of more than 80 years).
        let room = u64::from(u32::MAX).saturating_sub(now.as_secs() + 1);
        let ttl_secs = u32::try_from(ttl.min(room)).unwrap_or(u32::MAX);
        Expiry {
            deadline_ms,
            ttl_secs,
        }
    }

    /// The low 32 bits of the deadline, kept as the item's client flags.
    pub(crate) fn flags(&self) -> u32 {
        (self.deadline_ms & 0xFFFF_FFFF) as u32
    }
}

/// The exact deadline of an item, from its client flags (the low 32 bits
/// of the deadline in unix milliseconds) and the remaining TTL memcached
/// reports (whole seconds, 0 to 3 s past the deadline): the one deadline
/// with those low bits nearest to what the TTL says.
pub(crate) fn deadline_of(flags: u32, ttl_remaining_secs: i64, now: Duration) -> Duration {
    let now_ms = i128::try_from(now.as_millis()).unwrap_or(i128::MAX);
    let estimate =
        now_ms + i128::from(ttl_remaining_secs) * 1000 - i128::from(BACKSTOP) * 1000 + 500;
    let low = i128::from(flags);
    let modulus = 1i128 << 32;
    let mut diff = (low - estimate).rem_euclid(modulus);
    if diff >= modulus / 2 {
        diff -= modulus;
    }
    let ms = (estimate + diff).max(0);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// Now, as time since the unix epoch.
pub(crate) fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn ceil_ms(d: Duration) -> u64 {
    let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 > 0);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> String {
        String::from_utf8(item_key("session:", 1_700_000_000_000_000, k)).unwrap()
    }

    #[test]
    fn session_ids_stay_readable() {
        let id = "a".repeat(64);
        assert_eq!(key(&id), format!("session:1700000000000000:k{id}"));
    }

    #[test]
    fn every_valid_key_fits_memcached() {
        for k in [
            "x".repeat(255),
            "€".repeat(85),
            " ".repeat(255),
            "\u{1}".repeat(255),
            "a b\tc\nd%".into(),
        ] {
            let long_prefix = "p".repeat(crate::config::MAX_PREFIX_BYTES);
            for encoded in [
                item_key("session:", u64::MAX, &k),
                item_key(&long_prefix, u64::MAX, &k),
            ] {
                assert!(encoded.len() <= MEMCACHED_MAX_KEY, "{}", encoded.len());
                assert!(
                    encoded.iter().all(u8::is_ascii_graphic),
                    "{:?}",
                    String::from_utf8_lossy(&encoded)
                );
            }
        }
    }

    #[test]
    fn distinct_keys_stay_distinct() {
        let keys = [
            "session",
            "Session",
            "session ",
            " session",
            "ß",
            "SS",
            "café",
            "cafe",
            "cafe\u{301}",
            "caf%C3%A9",
            "%",
            "%25",
            "k",
            "h",
        ];
        let mut seen = std::collections::HashSet::new();
        for k in keys {
            assert!(seen.insert(key(k)), "{k:?} collides");
        }
        // Long keys sharing 254 bytes are hashed, and still differ.
        let (a, b) = (
            format!("{}a", "x".repeat(254)),
            format!("{}b", "x".repeat(254)),
        );
        assert!(key(&a).contains(":h"));
        assert_ne!(key(&a), key(&b));
        // An escaped key never looks like a hashed one.
        assert!(key("%").ends_with(":k%25"));
    }

    #[test]
    fn the_deadline_rounds_up_and_memcached_keeps_the_item_longer() {
        let now = Duration::new(1_700_000_000, 400_000_001);
        let e = Expiry::after_at(Duration::from_millis(500), now);
        assert_eq!(e.deadline_ms, 1_700_000_000_901);
        assert_eq!(e.ttl_secs, 3);
        let e = Expiry::after_at(Duration::from_secs(1), now);
        assert_eq!(e.ttl_secs, 3);
        let e = Expiry::after_at(Duration::from_secs(40 * 24 * 3600), now);
        assert_eq!(u64::from(e.ttl_secs), 40 * 24 * 3600 + 2 + 3600);
        let e = Expiry::after_at(Duration::MAX, now);
        assert!(u64::from(e.ttl_secs) + now.as_secs() <= u64::from(u32::MAX));
    }

    #[test]
    fn the_deadline_comes_back_from_flags_and_ttl() {
        let now = Duration::new(1_700_000_000, 123_456_789);
        for (secs, reported_late) in [(1u64, 0i64), (2, 3), (3600, 1), (90 * 24 * 3600, 2)] {
            let e = Expiry::after_at(Duration::from_secs(secs), now);
            // memcached reports the TTL it holds, give or take its clock.
            for skew in [-1i64, 0, 1] {
                let remaining = i64::from(e.ttl_secs) + skew - reported_late.min(2);
                let back = deadline_of(e.flags(), remaining, now);
                assert_eq!(
                    back.as_millis(),
                    u128::from(e.deadline_ms),
                    "{secs} s, {skew}"
                );
            }
        }
    }
}
