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

/// The latest unix time memcached can expire an item at: it parses the `T`
/// flag as a signed 32-bit number, so a later absolute time (2038-01-19 on)
/// is taken as negative, and the item, acknowledged as stored, is gone at
/// once.
const LAST_SERVER_EXPIRY: u64 = 0x7FFF_FFFF; // i32::MAX

/// Seconds between the TTL being computed here and the client turning it
/// into an absolute time when it sends the command.
const SEND_SLACK: u64 = 60;

/// The expiry of a write: the exact instant (unix milliseconds, rounded up)
/// readers compare against, and what the item carries for it.
///
/// * Usually `ttl_secs` is `Some`: memcached's TTL (seconds, later than the
///   exact instant) and `flags`, the instant's low 32 bits; the reported
///   remaining TTL supplies the high bits ([`deadline_of`]).
/// * For an instant memcached cannot express (its `T` ends at 2038-01-19),
///   `ttl_secs` is `None`, so memcached keeps the item without expiry, and
///   `flags` holds the instant in whole unix seconds, rounded up (at most
///   2106-02-07: later instants are cut to it). A reader that sees no TTL
///   and flags that are not 0 takes them as that instant ([`far_deadline`]);
///   a write without expiry has flags 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expiry {
    /// Unix milliseconds.
    pub(crate) deadline_ms: u64,
    /// Seconds for memcached's `T` flag; `None`: no `T`.
    pub(crate) ttl_secs: Option<u32>,
    /// The item's client flags.
    pub(crate) flags: u32,
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
        let server_expiry = now.as_secs().saturating_add(ttl).saturating_add(SEND_SLACK);
        match u32::try_from(ttl) {
            Ok(ttl_secs) if server_expiry <= LAST_SERVER_EXPIRY => Expiry {
                deadline_ms,
                ttl_secs: Some(ttl_secs),
                flags: (deadline_ms & 0xFFFF_FFFF) as u32,
            },
            _ => {
                let secs = deadline_ms.div_ceil(1000);
                Expiry {
                    // What a reader gets back from the flags.
                    deadline_ms: secs.min(u64::from(u32::MAX)) * 1000,
                    ttl_secs: None,
                    flags: u32::try_from(secs).unwrap_or(u32::MAX),
                }
            }
        }
    }
}

/// The exact deadline of an item memcached keeps without expiry: `None`
/// for flags 0 (written without expiry), else the unix seconds in the
/// flags (an expiry past what memcached's `T` can hold, see [`Expiry`]).
pub(crate) fn far_deadline(flags: u32) -> Option<Duration> {
    (flags != 0).then(|| Duration::from_secs(u64::from(flags)))
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
        assert_eq!(e.ttl_secs, Some(3));
        let e = Expiry::after_at(Duration::from_secs(1), now);
        assert_eq!(e.ttl_secs, Some(3));
        let e = Expiry::after_at(Duration::from_secs(40 * 24 * 3600), now);
        assert_eq!(e.ttl_secs, Some(40 * 24 * 3600 + 2 + 3600));
    }

    /// memcached parses `T` as a signed 32-bit number: an absolute time
    /// from 2038-01-19 on is negative to it, and the item, stored with
    /// `HD`, is gone at once. Such expiries go into the flags instead.
    #[test]
    fn no_ttl_reaches_past_what_memcached_can_hold() {
        let now = Duration::new(1_796_000_000, 1);
        for secs in [
            1u64,
            30 * 24 * 3600,
            49 * 24 * 3600 + 1,
            3650 * 24 * 3600,
            20 * 365 * 24 * 3600,
            100 * 365 * 24 * 3600,
            u64::MAX,
        ] {
            let duration = Duration::from_secs(secs);
            let e = Expiry::after_at(duration, now);
            match e.ttl_secs {
                Some(ttl) => {
                    assert!(
                        now.as_secs() + u64::from(ttl) + SEND_SLACK <= 0x7FFF_FFFF,
                        "{secs} s: T{ttl}"
                    );
                    assert_eq!(u64::from(e.flags), e.deadline_ms & 0xFFFF_FFFF);
                }
                None => {
                    let back = far_deadline(e.flags).unwrap();
                    assert_eq!(back.as_millis(), u128::from(e.deadline_ms), "{secs} s");
                    // Never early (short of the cut at 2106).
                    let exact = now.saturating_add(duration);
                    assert!(
                        back >= exact || e.flags == u32::MAX,
                        "{secs} s: {back:?} < {exact:?}"
                    );
                    assert!(
                        back < exact.saturating_add(Duration::from_secs(1)),
                        "{secs} s"
                    );
                }
            }
        }
        let e = Expiry::after_at(Duration::from_secs(20 * 365 * 24 * 3600), now);
        assert_eq!(e.ttl_secs, None);
        let e = Expiry::after_at(Duration::MAX, now);
        assert_eq!((e.ttl_secs, e.flags), (None, u32::MAX));
        assert_eq!(far_deadline(0), None);
    }

    #[test]
    fn the_deadline_comes_back_from_flags_and_ttl() {
        let now = Duration::new(1_700_000_000, 123_456_789);
        for (secs, reported_late) in [(1u64, 0i64), (2, 3), (3600, 1), (90 * 24 * 3600, 2)] {
            let e = Expiry::after_at(Duration::from_secs(secs), now);
            let ttl = i64::from(e.ttl_secs.unwrap());
            // memcached reports the TTL it holds, give or take its clock.
            for skew in [-1i64, 0, 1] {
                let remaining = ttl + skew - reported_late.min(2);
                let back = deadline_of(e.flags, remaining, now);
                assert_eq!(
                    back.as_millis(),
                    u128::from(e.deadline_ms),
                    "{secs} s, {skew}"
                );
            }
        }
    }

    /// Deadlines whose low 32 bits wrap between the write and the read, or
    /// between the estimate and the deadline, and durations longer than the
    /// 49.7 days the 32 bits span.
    #[test]
    fn the_deadline_comes_back_across_the_32_bit_wrap() {
        let wrap = 1u64 << 32;
        let base = 400 * wrap; // about 2024
        for offset_ms in [-5_000i64, -1_001, -1, 0, 1, 999, 1_000, 3_000] {
            for secs in [1u64, 3, 3600, 50 * 24 * 3600, 200 * 24 * 3600] {
                let deadline_ms = base.saturating_add_signed(offset_ms);
                let now_ms = deadline_ms - secs * 1000;
                let now = Duration::from_millis(now_ms);
                let e = Expiry::after_at(Duration::from_secs(secs), now);
                assert_eq!(e.deadline_ms, deadline_ms);
                let ttl = i64::from(e.ttl_secs.unwrap());
                for elapsed in [0u64, 999, secs * 1000 / 2] {
                    let read_at = Duration::from_millis(now_ms + elapsed);
                    for skew in [-1i64, 0, 1] {
                        let remaining = ttl - i64::try_from(elapsed / 1000).unwrap() + skew;
                        let back = deadline_of(e.flags, remaining, read_at);
                        assert_eq!(
                            back.as_millis(),
                            u128::from(deadline_ms),
                            "{offset_ms} ms, {secs} s, {elapsed} ms, {skew}"
                        );
                    }
                }
            }
        }
    }
}
