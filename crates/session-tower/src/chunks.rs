//! Splitting a sealed value over several cookies, and reading it back.
//!
//! A value that fits one cookie is sent as `<name>=<value>`. A larger one
//! is split into `<name>-0`, `<name>-1`, ..., `<name>-(n-1)`, the first
//! carrying the count: `<name>-0=<n>.<first piece>`. The count is also bound
//! into the sealed value (see [`crate::sealed`]), so pieces of two
//! different seals, a piece missing, pieces swapped or a count changed all
//! fail to open.

use cookie::Cookie;
use http::header::{COOKIE, HeaderMap};

use crate::sealed::{Refused, encoded_len};

/// The most cookies a layout may use (the index of a chunk has at most two
/// digits; browsers keep about 50 cookies per domain).
pub(crate) const MAX_CHUNKS: u32 = 32;

/// The sizes a layout must respect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The longest value of one cookie, in bytes.
    pub(crate) chunk_bytes: usize,
    /// The largest total of `name=value` pairs (joined by `; `), as the
    /// browser sends them back in its `Cookie` header.
    pub(crate) max_total: usize,
}

/// The name of chunk `index` of the cookie `name`.
pub(crate) fn chunk_name(name: &str, index: u32) -> String {
    format!("{name}-{index}")
}

fn digits(n: u32) -> usize {
    n.to_string().len()
}

impl Limits {
    /// How many cookies a sealed value of `len` characters takes (1 for a
    /// plain `<name>` cookie), or `None` if it would take more than
    /// [`MAX_CHUNKS`].
    pub(crate) fn chunks_for(&self, len: usize) -> Option<u32> {
        if len <= self.chunk_bytes {
            return Some(1);
        }
        // Chunk 0 also carries the count and a `.`.
        (2..=MAX_CHUNKS).find(|n| len + digits(*n) < *n as usize * self.chunk_bytes)
    }

    /// The `Cookie` header bytes a layout of a sealed value of `len`
    /// characters under `name` costs, and its number of cookies.
    pub(crate) fn total_for(&self, name: &str, len: usize) -> Option<(usize, u32)> {
        let n = self.chunks_for(len)?;
        if n == 1 {
            return Some((name.len() + 1 + len, 1));
        }
        let names: usize = (0..n).map(|i| chunk_name(name, i).len()).sum();
        // `=` per cookie, `; ` between them, the count and its `.`.
        let total = names + n as usize + 2 * (n as usize - 1) + digits(n) + 1 + len;
        Some((total, n))
    }

    /// The largest serialized session (JSON bytes) whose sealed layout
    /// under `name` stays within the limits.
    pub(crate) fn max_json_bytes(&self, name: &str) -> usize {
        let fits = |json: usize| {
            self.total_for(name, encoded_len(json))
                .is_some_and(|(total, _)| total <= self.max_total)
        };
        // The cost grows with the JSON's length: search the boundary.
        let (mut lo, mut hi) = (0usize, self.max_total);
        if !fits(lo) {
            return 0;
        }
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }
}

/// The cookies carrying `sealed` (already sealed for `count` cookies):
/// `(name, value)` pairs in order.
pub(crate) fn split(
    name: &str,
    sealed: &str,
    count: u32,
    limits: &Limits,
) -> Vec<(String, String)> {
    if count == 1 {
        return vec![(name.to_owned(), sealed.to_owned())];
    }
    let prefix = format!("{count}.");
    // Base64 text is ASCII: any byte offset is a character boundary.
    let first = (limits.chunk_bytes - prefix.len()).min(sealed.len());
    let mut out = vec![(chunk_name(name, 0), format!("{prefix}{}", &sealed[..first]))];
    let rest = &sealed[first..];
    for (i, piece) in rest.as_bytes().chunks(limits.chunk_bytes).enumerate() {
        let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
        out.push((
            chunk_name(name, index),
            String::from_utf8_lossy(piece).into_owned(),
        ));
    }
    out
}

/// What a request's `Cookie` headers hold of a session cookie.
#[derive(Debug, Default)]
pub(crate) struct Offered {
    /// The joined sealed value and its cookie count, or why the cookies
    /// do not form one; `None` if the request has none of them.
    pub(crate) value: Option<Result<(String, u32), Refused>>,
    /// The names of every cookie of the layout's family the request sent
    /// (`<name>`, `<name>-<k>`): what a new layout expires if it does not
    /// set them.
    pub(crate) present: Vec<String>,
}

/// Reads the session cookie `name` (one cookie, or chunks) from `headers`.
/// The first cookie of each name counts; nothing here panics, whatever
/// the client sent.
pub(crate) fn read(headers: &HeaderMap, name: &str, limits: &Limits) -> Offered {
    // The first value of `<name>` (index None) and of `<name>-<k>`.
    let mut single: Option<String> = None;
    let mut chunks: Vec<Option<String>> = Vec::new();
    let mut present: Vec<String> = Vec::new();
    for header in headers.get_all(COOKIE) {
        let text = String::from_utf8_lossy(header.as_bytes());
        for cookie in Cookie::split_parse(text.as_ref()).filter_map(Result::ok) {
            let index = match cookie.name().strip_prefix(name) {
                Some("") => None,
                Some(rest) => match chunk_index(rest) {
                    Some(k) => Some(k),
                    None => continue,
                },
                None => continue,
            };
            let slot = match index {
                None => &mut single,
                Some(k) => {
                    let k = k as usize;
                    if chunks.len() <= k {
                        chunks.resize(k + 1, None);
                    }
                    &mut chunks[k]
                }
            };
            if slot.is_none() {
                *slot = Some(cookie.value_trimmed().to_owned());
                present.push(cookie.name().to_owned());
            }
        }
    }
    let value = match (single, chunks.first().cloned().flatten()) {
        (Some(value), _) => Some(if value.len() > limits.chunk_bytes {
            Err(Refused::Oversized)
        } else {
            Ok((value, 1))
        }),
        (None, Some(first)) => Some(join(&first, &chunks, limits)),
        (None, None) => None,
    };
    Offered { value, present }
}

/// `-<k>` with `k` a chunk index (no sign, no leading zero, below
/// [`MAX_CHUNKS`]).
fn chunk_index(rest: &str) -> Option<u32> {
    let digits = rest.strip_prefix('-')?;
    if digits.is_empty()
        || digits.len() > 2
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok().filter(|k| *k < MAX_CHUNKS)
}

fn join(first: &str, chunks: &[Option<String>], limits: &Limits) -> Result<(String, u32), Refused> {
    let (count, piece) = first.split_once('.').ok_or(Refused::Layout)?;
    let count = chunk_index(&format!("-{count}")).ok_or(Refused::Layout)?;
    if count < 2 {
        return Err(Refused::Layout);
    }
    let max_chunks = limits.max_total.div_ceil(limits.chunk_bytes) as u32 + 1;
    if count > max_chunks {
        return Err(Refused::Oversized);
    }
    let mut joined = String::with_capacity(count as usize * limits.chunk_bytes);
    for k in 0..count as usize {
        let value = chunks
            .get(k)
            .and_then(Option::as_deref)
            .ok_or(Refused::Layout)?;
        if value.len() > limits.chunk_bytes {
            return Err(Refused::Oversized);
        }
        joined.push_str(if k == 0 { piece } else { value });
        if joined.len() > limits.max_total {
            return Err(Refused::Oversized);
        }
    }
    Ok((joined, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const LIMITS: Limits = Limits {
        chunk_bytes: 100,
        max_total: 1000,
    };

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.append(COOKIE, HeaderValue::from_str(value).unwrap());
        map
    }

    fn cookie_header(pairs: &[(String, String)]) -> String {
        pairs
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn every_length_splits_into_its_count_and_joins_back() {
        for len in 1..=900 {
            let sealed: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            let Some(n) = LIMITS.chunks_for(len) else {
                panic!("{len} does not fit")
            };
            let pairs = split("s", &sealed, n, &LIMITS);
            assert_eq!(pairs.len(), n as usize, "{len}");
            for (_, value) in &pairs {
                assert!(value.len() <= LIMITS.chunk_bytes, "{len}: {}", value.len());
                assert!(!value.is_empty(), "{len}");
            }
            let header = cookie_header(&pairs);
            let (total, count) = LIMITS.total_for("s", len).unwrap();
            assert_eq!((header.len(), count), (total, n), "{len}");
            let offered = read(&headers(&header), "s", &LIMITS);
            assert_eq!(offered.value.unwrap().unwrap(), (sealed, n), "{len}");
            assert_eq!(offered.present.len(), n as usize);
        }
    }

    #[test]
    fn max_json_bytes_is_the_boundary() {
        let limits = Limits {
            chunk_bytes: 3900,
            max_total: 8192,
        };
        let max = limits.max_json_bytes("session");
        let (total, n) = limits.total_for("session", encoded_len(max)).unwrap();
        assert!(total <= 8192 && n == 3, "{total} {n}");
        let (total, _) = limits.total_for("session", encoded_len(max + 1)).unwrap();
        assert!(total > 8192, "{total}");
    }

    #[test]
    fn broken_layouts_are_refused() {
        let r = |h: &str| read(&headers(h), "s", &LIMITS).value.unwrap().unwrap_err();
        assert_eq!(r("s-0=abc"), Refused::Layout);
        assert_eq!(r("s-0=1.abc"), Refused::Layout);
        assert_eq!(r("s-0=2.abc"), Refused::Layout);
        assert_eq!(r("s-0=2.abc; s-2=def"), Refused::Layout);
        assert_eq!(r("s-0=02.abc; s-1=def"), Refused::Layout);
        assert_eq!(r("s-0=x.abc; s-1=def"), Refused::Layout);
        assert_eq!(r("s-0=31.abc"), Refused::Oversized);
        assert_eq!(r(&format!("s={}", "a".repeat(101))), Refused::Oversized);
        assert_eq!(
            r(&format!("s-0=2.{}; s-1=b", "a".repeat(120))),
            Refused::Oversized
        );
        // Other cookies and look-alike names are not the session's.
        let offered = read(
            &headers("x=1; s-00=a; s-x=b; s-1-1=c; ss=d; s-99=e"),
            "s",
            &LIMITS,
        );
        assert!(offered.value.is_none());
        assert!(offered.present.is_empty(), "{:?}", offered.present);
    }

    #[test]
    fn the_plain_cookie_wins_and_every_family_member_is_present() {
        let offered = read(&headers("s-1=b; s=one; s-0=2.a; s=two"), "s", &LIMITS);
        assert_eq!(offered.value.unwrap().unwrap(), ("one".to_owned(), 1));
        assert_eq!(offered.present, ["s-1", "s", "s-0"]);
    }
}
