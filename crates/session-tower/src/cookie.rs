//! Reading the session cookie and writing `Set-Cookie`.

use http::header::{COOKIE, HeaderMap, HeaderValue};
use session_core::SessionConfig;

/// The value of the first cookie called `name` in the request's `Cookie`
/// headers, as raw bytes (a hostile client may send anything).
pub(crate) fn find<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers.get_all(COOKIE).iter().find_map(|header| {
        header.as_bytes().split(|b| *b == b';').find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            let (key, value) = (&pair[..eq], &pair[eq + 1..]);
            if key.trim_ascii() != name.as_bytes() {
                return None;
            }
            let value = value.trim_ascii();
            Some(
                value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value),
            )
        })
    })
}

/// A `Set-Cookie` value carrying `value` with every attribute of the config
/// and `Max-Age=max_age_secs`.
pub(crate) fn set_cookie(
    config: &SessionConfig,
    value: &str,
    max_age_secs: u64,
) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    let mut cookie = format!(
        "{}={value}; Path={}; Max-Age={max_age_secs}",
        config.key(),
        config.path()
    );
    if max_age_secs == 0 {
        cookie.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    }
    if let Some(domain) = config.domain() {
        cookie.push_str("; Domain=");
        cookie.push_str(domain);
    }
    if config.secure() {
        cookie.push_str("; Secure");
    }
    if config.httponly() {
        cookie.push_str("; HttpOnly");
    }
    cookie.push_str("; SameSite=");
    cookie.push_str(config.samesite().as_str());
    HeaderValue::from_str(&cookie)
}

/// The null cookie that ends a session in the browser (`Max-Age=0`), as
/// Litestar sends it.
pub(crate) fn expired(
    config: &SessionConfig,
) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    set_cookie(config, "null", 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        map
    }

    #[test]
    fn finds_the_first_cookie_of_the_name() {
        let h = headers(&[b"a=1; session=abc; session=def", b"session=ghi"]);
        assert_eq!(find(&h, "session"), Some(&b"abc"[..]));
        assert_eq!(find(&h, "sess"), None);
        let h = headers(&[b"x=1", b" session = \"q\" "]);
        assert_eq!(find(&h, "session"), Some(&b"q"[..]));
    }

    #[test]
    fn survives_hostile_headers() {
        let h = headers(&[b"session", b";;;=;", b"session=\xff\xfe", b"=x"]);
        assert_eq!(find(&h, "session"), Some(&b"\xff\xfe"[..]));
        assert_eq!(find(&headers(&[b""]), "session"), None);
    }

    #[test]
    fn set_cookie_carries_every_attribute() {
        let config = SessionConfig::builder()
            .key("sid")
            .path("/app")
            .domain(Some("example.com"))
            .secure(true)
            .samesite(session_core::SameSite::Strict)
            .build()
            .unwrap();
        let v = set_cookie(&config, "abc", 60).unwrap();
        assert_eq!(
            v,
            "sid=abc; Path=/app; Max-Age=60; Domain=example.com; Secure; HttpOnly; SameSite=Strict"
        );
        let v = expired(&config).unwrap();
        assert!(
            v.to_str()
                .unwrap()
                .starts_with("sid=null; Path=/app; Max-Age=0; Expires=Thu, 01 Jan 1970")
        );
    }
}

/// Property tests of cookie parsing: whatever a client sends, `find` does
/// not panic, returns a piece of what was sent, and only a well-formed id
/// survives the middleware's filter. 2,000 cases; `PROPTEST_CASES` for a
/// long run.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use session_core::is_well_formed_session_id;

    fn config() -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000);
        ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// Header bytes as a client may send them: mostly cookie-shaped pieces
    /// (names, `=`, `;`, quotes, spaces, hex, non-UTF-8), sometimes anything.
    fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"session=".to_vec()),
            Just(b"session".to_vec()),
            Just(b"; ".to_vec()),
            Just(b";".to_vec()),
            Just(b"=".to_vec()),
            Just(b"\"".to_vec()),
            Just(b" ".to_vec()),
            Just(b"\t".to_vec()),
            "[0-9a-f]{64}".prop_map(String::into_bytes),
            "[0-9a-fA-F' ;=-]{0,70}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..16),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
    }

    /// What the middleware does with the request's cookies.
    fn adopted_id(headers: &HeaderMap) -> Option<&str> {
        find(headers, "session")
            .and_then(|raw| std::str::from_utf8(raw).ok())
            .filter(|id| is_well_formed_session_id(id, 32))
    }

    fn is_within(part: &[u8], whole: &[u8]) -> bool {
        part.is_empty() || whole.windows(part.len()).any(|w| w == part)
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_cookie_header_is_parsed_without_panic(
            values in prop::collection::vec(header_bytes(), 0..4)
        ) {
            let mut map = HeaderMap::new();
            let mut sent = Vec::new();
            for v in &values {
                // Bytes a header cannot carry never reach the middleware.
                if let Ok(value) = HeaderValue::from_bytes(v) {
                    map.append(COOKIE, value);
                    sent.push(v.clone());
                }
            }
            if let Some(found) = find(&map, "session") {
                prop_assert!(
                    sent.iter().any(|v| is_within(found, v)),
                    "{:?} is not part of what was sent", found
                );
                prop_assert!(!found.contains(&b';'));
            }
            if let Some(id) = adopted_id(&map) {
                prop_assert_eq!(id.len(), 64);
                prop_assert!(id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            }
        }

        #[test]
        fn a_well_formed_id_is_found_among_other_cookies(
            id in "[0-9a-f]{64}",
            before in "[a-z]{1,8}=[a-zA-Z0-9]{0,20}",
            after in "[a-z]{1,8}=[a-zA-Z0-9]{0,20}",
            quoted in any::<bool>(),
        ) {
            prop_assume!(!before.starts_with("session=") && !after.starts_with("session="));
            let value = if quoted { format!("\"{id}\"") } else { id.clone() };
            let header = format!("{before}; session={value}; {after}");
            let mut map = HeaderMap::new();
            map.append(COOKIE, HeaderValue::from_str(&header).unwrap());
            prop_assert_eq!(adopted_id(&map), Some(id.as_str()));
        }
    }
}
