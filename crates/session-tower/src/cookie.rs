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
