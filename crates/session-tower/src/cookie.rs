//! Reading the session cookie and writing `Set-Cookie`, with the `cookie`
//! crate.

use cookie::Cookie;
use cookie::time::{Duration, OffsetDateTime};
use http::header::{COOKIE, HeaderMap, HeaderValue};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::keys::CookieKeys;
use crate::{SameSite, SessionConfig};

/// The value of the first cookie called `name` in the request's `Cookie`
/// headers, surrounding double quotes removed.
///
/// A hostile client may send any bytes: a header that is not UTF-8 is read
/// with the invalid bytes replaced (U+FFFD), which no session id contains,
/// so the cookies around them are still found.
pub(crate) fn find(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(COOKIE).iter().find_map(|header| {
        let text = String::from_utf8_lossy(header.as_bytes());
        Cookie::split_parse(text.as_ref())
            .filter_map(Result::ok)
            .find(|cookie| cookie.name() == name)
            .map(|cookie| cookie.value_trimmed().to_owned())
    })
}

/// The session id the request offers: the value of the configured cookie,
/// if it is a well-formed id of the configured length (lowercase hex of
/// `session_id_bytes`). Anything else is ignored, without a store call.
/// This is the filter [`SessionLayer`](crate::SessionLayer) applies to every
/// request it handles.
pub(crate) fn offered_id(headers: &HeaderMap, config: &SessionConfig) -> Option<String> {
    find(headers, config.cookie_name()).filter(|id| config.is_well_formed_session_id(id))
}

/// The session id a request offers under signed id cookies: the value of
/// the configured cookie must be `<id>.<signature>`, a well-formed id and
/// its HMAC under one of `keys`. Anything else (an unsigned id, a forged
/// or altered one) is ignored, without a store call, with a debug event
/// that carries no cookie content.
pub(crate) fn offered_signed_id(
    headers: &HeaderMap,
    config: &SessionConfig,
    keys: &CookieKeys,
) -> Option<String> {
    let value = find(headers, config.cookie_name())?;
    let verified = value.rsplit_once('.').and_then(|(id, signature)| {
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        (config.is_well_formed_session_id(id) && keys.verify(&id_message(config, id), &signature))
            .then(|| id.to_owned())
    });
    if verified.is_none() {
        tracing::debug!("session id cookie has no valid signature; ignored");
    }
    verified
}

/// The value of a signed id cookie: `<id>.<HMAC-SHA256 in URL-safe base64>`,
/// signed with the first key.
pub(crate) fn signed_id(config: &SessionConfig, keys: &CookieKeys, id: &str) -> String {
    let signature = keys.sign(&id_message(config, id));
    format!("{id}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// What a signed id's HMAC covers: a label, the cookie name and the id.
fn id_message<'a>(config: &'a SessionConfig, id: &'a str) -> [&'a [u8]; 4] {
    [
        b"session-tower signed id v1\0",
        config.cookie_name().as_bytes(),
        b"\0",
        id.as_bytes(),
    ]
}

/// A `Set-Cookie` value carrying `value` with every attribute of the config
/// and `Max-Age=max_age_secs` (and, for `0`, an `Expires` in the past);
/// `None`: no `Max-Age`, a browser-session cookie.
pub(crate) fn set_cookie(
    config: &SessionConfig,
    value: &str,
    max_age_secs: Option<u64>,
) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    set_named_cookie(config, config.cookie_name(), value, max_age_secs)
}

/// [`set_cookie`] for the cookie `name` (a chunk of a client-side session)
/// with the attributes of the config.
pub(crate) fn set_named_cookie(
    config: &SessionConfig,
    name: &str,
    value: &str,
    max_age_secs: Option<u64>,
) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    let mut cookie = Cookie::build((name, value))
        .path(config.path())
        .secure(config.secure())
        .http_only(config.http_only())
        .same_site(match config.same_site() {
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::None => cookie::SameSite::None,
        });
    if let Some(secs) = max_age_secs {
        cookie = cookie.max_age(Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)));
        if secs == 0 {
            cookie = cookie.expires(OffsetDateTime::UNIX_EPOCH);
        }
    }
    if let Some(domain) = config.domain() {
        cookie = cookie.domain(domain);
    }
    HeaderValue::from_str(&in_sent_order(&cookie.build()))
}

/// The cookie as `Set-Cookie` text, its attributes in the order this
/// middleware has always sent them (`Path`, `Max-Age`, `Expires`,
/// `Domain`, `Secure`, `HttpOnly`, `SameSite`), which clients and tests may
/// compare whole. `Cookie`'s own `Display` writes the same attributes in
/// another order (`HttpOnly` first); here the order is ours, and every
/// value is as `Cookie` holds and writes it (`name=value`, the HTTP date,
/// a `Domain` without a leading `.`).
fn in_sent_order(cookie: &Cookie<'_>) -> String {
    let mut out = cookie.stripped().to_string();
    let mut attribute = |piece: Option<String>| {
        if let Some(piece) = piece {
            out.push_str("; ");
            out.push_str(&piece);
        }
    };
    attribute(cookie.path().map(|p| format!("Path={p}")));
    attribute(
        cookie
            .max_age()
            .map(|d| format!("Max-Age={}", d.whole_seconds())),
    );
    attribute(cookie.expires_datetime().map(|at| {
        // `Cookie` writes an expiry as an HTTP date (`Thu, 01 Jan 1970
        // 00:00:00 GMT`): take its text from a cookie holding nothing else.
        let alone = Cookie::build(("x", "")).expires(at).build().to_string();
        alone.trim_start_matches("x=; ").to_owned()
    }));
    attribute(cookie.domain().map(|d| format!("Domain={d}")));
    attribute((cookie.secure() == Some(true)).then(|| "Secure".to_owned()));
    attribute((cookie.http_only() == Some(true)).then(|| "HttpOnly".to_owned()));
    attribute(cookie.same_site().map(|s| format!("SameSite={s}")));
    out
}

/// The null cookie that ends a session in the browser (`Max-Age=0`), as
/// Litestar sends it.
pub(crate) fn expired(
    config: &SessionConfig,
) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    set_cookie(config, "null", Some(0))
}

/// [`expired`] for the cookie `name` (a chunk of a client-side session).
pub(crate) fn expired_named(
    config: &SessionConfig,
    name: &str,
) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    set_named_cookie(config, name, "null", Some(0))
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
        assert_eq!(find(&h, "session").as_deref(), Some("abc"));
        assert_eq!(find(&h, "sess"), None);
        let h = headers(&[b"x=1", b" session = \"q\" "]);
        assert_eq!(find(&h, "session").as_deref(), Some("q"));
        // A lone quote is a value, not a pair of quotes.
        let h = headers(&[b"session=\""]);
        assert_eq!(find(&h, "session").as_deref(), Some("\""));
    }

    #[test]
    fn survives_hostile_headers() {
        let h = headers(&[b"session", b";;;=;", b"session=\xff\xfe", b"=x"]);
        assert_eq!(find(&h, "session").as_deref(), Some("\u{fffd}\u{fffd}"));
        assert_eq!(find(&headers(&[b""]), "session"), None);
        // Bytes that are not UTF-8 hide no other cookie of the header.
        let id = "ab".repeat(32);
        let h =
            headers(&[&[b"x=\xc3\xa9; junk=\xff; session=".as_slice(), id.as_bytes()].concat()]);
        assert_eq!(find(&h, "session"), Some(id));
    }

    #[test]
    fn signed_ids_verify_and_forgeries_do_not() {
        let config = SessionConfig::default();
        let keys = CookieKeys::new([5u8; 32]).unwrap();
        let id = "ab".repeat(32);
        let value = signed_id(&config, &keys, &id);
        assert_eq!(value.len(), 64 + 1 + 43);
        let offered = |v: &str| {
            offered_signed_id(
                &headers(&[format!("session={v}").as_bytes()]),
                &config,
                &keys,
            )
        };
        assert_eq!(offered(&value), Some(id.clone()));
        // Unsigned, altered id, altered or cut signature, another key,
        // another cookie name: all refused.
        assert_eq!(offered(&id), None);
        let other_id = format!("ac{}", &value[2..]);
        assert_eq!(offered(&other_id), None);
        let mut bad_sig = value.clone().into_bytes();
        let last = bad_sig.len() - 2;
        bad_sig[last] = if bad_sig[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(offered(&String::from_utf8(bad_sig).unwrap()), None);
        assert_eq!(offered(&value[..value.len() - 1]), None);
        assert_eq!(offered(&format!("{value}.")), None);
        let other_keys = CookieKeys::new([6u8; 32]).unwrap();
        assert_eq!(offered(&signed_id(&config, &other_keys, &id)), None);
        let sid = SessionConfig::builder().cookie_name("sid").build().unwrap();
        assert_eq!(offered(&signed_id(&sid, &keys, &id)), None);
        // A rotated key ring still verifies the old signature.
        let rotated = CookieKeys::from_secrets([[6u8; 32], [5u8; 32]]).unwrap();
        let h = headers(&[format!("session={value}").as_bytes()]);
        assert_eq!(offered_signed_id(&h, &config, &rotated), Some(id));
    }

    #[test]
    fn set_cookie_carries_every_attribute() {
        let config = SessionConfig::builder()
            .cookie_name("sid")
            .path("/app")
            .domain(Some("example.com"))
            .secure(true)
            .same_site(SameSite::Strict)
            .build()
            .unwrap();
        let v = set_cookie(&config, "abc", Some(60)).unwrap();
        assert_eq!(
            v,
            "sid=abc; Path=/app; Max-Age=60; Domain=example.com; Secure; HttpOnly; SameSite=Strict"
        );
        let v = expired(&config).unwrap();
        assert_eq!(
            v,
            "sid=null; Path=/app; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; \
             Domain=example.com; Secure; HttpOnly; SameSite=Strict"
        );
        // Browsers ignore a leading dot of `Domain`; it is not sent.
        let dotted = config
            .to_builder()
            .domain(Some(".example.com"))
            .build()
            .unwrap();
        let v = set_cookie(&dotted, "abc", Some(60)).unwrap();
        assert!(
            v.to_str().unwrap().contains("; Domain=example.com; "),
            "{v:?}"
        );
        let plain = SessionConfig::builder()
            .http_only(false)
            .secure(false)
            .build()
            .unwrap();
        assert_eq!(
            set_cookie(&plain, "abc", Some(1)).unwrap(),
            "session=abc; Path=/; Max-Age=1; SameSite=Lax"
        );
        // A browser-session cookie: no Max-Age, no Expires.
        assert_eq!(
            set_cookie(&plain, "abc", None).unwrap(),
            "session=abc; Path=/; SameSite=Lax"
        );
    }
}

/// Property tests of cookie parsing: whatever a client sends, `find` does
/// not panic and returns a piece of what was sent, and [`offered_id`], the
/// filter the layer applies, passes exactly a well-formed id of the
/// configured length under the configured cookie name. Every case draws its
/// own config (cookie name, `session_id_bytes` over the whole allowed
/// range), so a filter that ignores the config (a hard-coded name or id
/// length) fails. 2,000 cases; `PROPTEST_CASES` for a long run.
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::limits::{MAX_SESSION_ID_BYTES, MIN_SESSION_ID_BYTES};
    use proptest::prelude::*;
    use session_test_support::documents::config;

    /// Cookie names a case may configure; each is a prefix or an extension
    /// of another, so a lookup by prefix would be caught.
    const NAMES: [&str; 4] = ["session", "sid", "session_id", "sess"];

    /// A config with one of [`NAMES`] and any allowed id length; the
    /// default length (32 bytes) is drawn often.
    fn session_config() -> impl Strategy<Value = SessionConfig> {
        let bytes = prop_oneof![
            1 => Just(32usize),
            3 => MIN_SESSION_ID_BYTES..=MAX_SESSION_ID_BYTES,
        ];
        (prop::sample::select(NAMES.to_vec()), bytes).prop_map(|(name, bytes)| {
            SessionConfig::builder()
                .cookie_name(name)
                .session_id_bytes(bytes)
                .build()
                .expect("a valid config")
        })
    }

    /// `len` lowercase hex digits.
    fn hex(len: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(b"0123456789abcdef".to_vec()), len)
            .prop_map(|digits| String::from_utf8(digits).expect("ASCII"))
    }

    /// Header bytes as a client may send them to a layer whose ids are
    /// `len` hex digits: mostly cookie-shaped pieces (every name a case may
    /// configure, `=`, `;`, quotes, spaces, hex of the id length, one digit
    /// more or less, the default 64, upper case, non-UTF-8), sometimes
    /// anything.
    fn header_bytes(len: usize) -> impl Strategy<Value = Vec<u8>> {
        let name = prop::sample::select(NAMES.to_vec());
        let piece = prop_oneof![
            4 => name.clone().prop_map(|n| format!("{n}=").into_bytes()),
            1 => name.prop_map(|n| n.as_bytes().to_vec()),
            2 => Just(b"; ".to_vec()),
            1 => Just(b";".to_vec()),
            1 => Just(b"=".to_vec()),
            1 => Just(b"\"".to_vec()),
            1 => Just(b" ".to_vec()),
            1 => Just(b"\t".to_vec()),
            4 => hex(len).prop_map(String::into_bytes),
            1 => hex(len - 1).prop_map(String::into_bytes),
            1 => hex(len + 1).prop_map(String::into_bytes),
            1 => hex(64).prop_map(String::into_bytes),
            1 => hex(len).prop_map(|h| h.to_uppercase().into_bytes()),
            1 => "[0-9a-fA-F' ;=-]{0,70}".prop_map(String::into_bytes),
            1 => prop::collection::vec(any::<u8>(), 0..16),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
    }

    /// A config and up to four `Cookie` headers sent to it.
    fn config_and_headers() -> impl Strategy<Value = (SessionConfig, Vec<Vec<u8>>)> {
        session_config().prop_flat_map(|config| {
            let headers = prop::collection::vec(header_bytes(config.session_id_bytes() * 2), 0..4);
            (Just(config), headers)
        })
    }

    /// True if `part` is a piece of `whole` as the middleware reads it
    /// (bytes that are not UTF-8 replaced).
    fn is_within(part: &str, whole: &[u8]) -> bool {
        part.is_empty() || String::from_utf8_lossy(whole).contains(part)
    }

    /// A `Cookie` header `before; <name>=<value>; after`.
    fn one_header(before: &str, name: &str, value: &str, after: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        let header = format!("{before}; {name}={value}; {after}");
        map.append(COOKIE, HeaderValue::from_str(&header).unwrap());
        map
    }

    /// A cookie `name=value` whose name is not `name`.
    fn other_cookie(config: &SessionConfig, cookie: &str) -> bool {
        cookie.split_once('=').map(|(n, _)| n) != Some(config.cookie_name())
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_cookie_header_is_parsed_without_panic(
            (config, values) in config_and_headers()
        ) {
            let name = config.cookie_name();
            let mut map = HeaderMap::new();
            let mut sent = Vec::new();
            for v in &values {
                // Bytes a header cannot carry never reach the middleware.
                if let Ok(value) = HeaderValue::from_bytes(v) {
                    map.append(COOKIE, value);
                    sent.push(v.clone());
                }
            }
            let found = find(&map, name);
            if let Some(found) = &found {
                prop_assert!(
                    sent.iter().any(|v| is_within(found, v)),
                    "{:?} is not part of what was sent", found
                );
                prop_assert!(!found.contains(';'));
            }
            let offered = offered_id(&map, &config);
            if let Some(id) = &offered {
                // Only the first cookie of the configured name is offered.
                prop_assert_eq!(Some(id), found.as_ref());
                prop_assert_eq!(id.len(), config.session_id_bytes() * 2);
                prop_assert!(id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            }
        }

        #[test]
        fn a_well_formed_id_is_found_among_other_cookies(
            (config, id) in session_config()
                .prop_flat_map(|c| { let len = c.session_id_bytes() * 2; (Just(c), hex(len)) }),
            before in "[a-z_]{1,10}=[a-zA-Z0-9]{0,20}",
            after in "[a-z_]{1,10}=[a-zA-Z0-9]{0,20}",
            quoted in any::<bool>(),
        ) {
            prop_assume!(other_cookie(&config, &before) && other_cookie(&config, &after));
            let value = if quoted { format!("\"{id}\"") } else { id.clone() };
            let map = one_header(&before, config.cookie_name(), &value, &after);
            prop_assert_eq!(offered_id(&map, &config), Some(id.clone()));
            // The same id under any other name is not the session's.
            for other in NAMES.iter().filter(|n| **n != config.cookie_name()) {
                let map = one_header(&before, other, &value, &after);
                prop_assert_eq!(offered_id(&map, &config), None, "offered under {}", other);
            }
            // Nor is it in upper case.
            let map = one_header(&before, config.cookie_name(), &id.to_uppercase(), &after);
            prop_assert!(id.bytes().all(|b| b.is_ascii_digit()) || offered_id(&map, &config).is_none());
        }

        #[test]
        fn an_id_of_another_length_is_never_offered(
            (config, id) in session_config().prop_flat_map(|c| {
                let bytes = c.session_id_bytes();
                // Any other allowed length (the default 32 often), or one
                // hex digit more or less.
                let len = prop_oneof![
                    2 => Just(64usize),
                    2 => (MIN_SESSION_ID_BYTES..=MAX_SESSION_ID_BYTES).prop_map(|b| b * 2),
                    1 => Just(bytes * 2 - 1),
                    1 => Just(bytes * 2 + 1),
                ]
                .prop_filter("another length", move |len| *len != bytes * 2);
                (Just(c), len.prop_flat_map(hex))
            }),
        ) {
            let map = one_header("theme=dark", config.cookie_name(), &id, "lang=en");
            prop_assert_eq!(find(&map, config.cookie_name()), Some(id.clone()));
            prop_assert_eq!(offered_id(&map, &config), None);
        }
    }
}
