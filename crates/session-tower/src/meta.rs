//! [`Expiry`], the per-session expiry modes, and the session's metadata:
//! what the middleware keeps beside the handler's data in the stored
//! session (its creation time, its expiry mode, a client-side session's
//! fingerprint seed), under one reserved top-level key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::SessionError;
use crate::config::limits::MAX_MAX_AGE;

/// The top-level key of the stored session that holds the middleware's
/// metadata (creation time, expiry mode). It is removed from the session
/// when it is loaded, so [`Session::data`](crate::Session::data) and
/// [`Session::get`](crate::Session::get) never show it, and
/// [`Session::insert`](crate::Session::insert) refuses it
/// ([`SessionError::ReservedKey`]).
///
/// It is written only when there is metadata to keep: a session with the
/// configured expiry and no `absolute_lifetime` is stored as the
/// handler's data alone, a plain JSON object.
///
/// Metadata that is present but unreadable or out of range (an inactivity
/// timeout outside 1 s to 400 days, a fixed expiry more than 400 days
/// ahead, a creation time in the future beyond a few minutes of clock
/// skew) ends the session when it is loaded: the row is deleted, the
/// cookie expired, and the request has no session. It is never ignored,
/// which could let a session outlive its absolute lifetime.
///
/// Under
/// [`litestar_compatible`](crate::SessionConfigBuilder::litestar_compatible)
/// the middleware keeps no metadata at all (see [`Expiry`]): the stored
/// object is the Litestar application's session, so this key is ordinary
/// data there, shown to handlers, kept by every write, and accepted by
/// `insert`.
///
/// ```
/// assert_eq!(session_tower::METADATA_KEY, "__session_tower");
/// ```
pub const METADATA_KEY: &str = "__session_tower";

/// How long a session lives, chosen per session with
/// [`Session::set_expiry`](crate::Session::set_expiry) and kept in the
/// stored session, so it holds for every later request. Every mode is
/// also bounded by `absolute_lifetime`, when configured.
///
/// | mode | cookie | stored session expires | renewed on access |
/// | --- | --- | --- | --- |
/// | [`Configured`](Expiry::Configured) (default) | `Max-Age=max_age` | `max_age` after its last write | if `renew_on_access` |
/// | [`OnSessionEnd`](Expiry::OnSessionEnd) | no `Max-Age`: gone when the browser closes | `max_age` after its last write (the server-side bound) | if `renew_on_access` |
/// | [`OnInactivity(d)`](Expiry::OnInactivity) | `Max-Age=d` | `d` after its last write or renewal | always (with `renew_threshold`) |
/// | [`AtDateTime(t)`](Expiry::AtDateTime) | `Max-Age` up to `t` | at `t` | never |
///
/// A browser session still ends on the server: browsers that restore
/// tabs keep session cookies across restarts, so the stored session
/// expires `max_age` after its last write (or renewal, under
/// `renew_on_access`), like a configured one.
///
/// Under `litestar_compatible` only `Configured` is accepted: the other
/// modes must be remembered in the stored session, and a Litestar
/// application would see that metadata as a key of its own session.
///
/// # Examples
///
/// "Remember me" is one call at login:
///
/// ```
/// use std::time::Duration;
/// use session_tower::{Expiry, Session, SessionError};
///
/// async fn login(session: Session, remember_me: bool) -> Result<(), SessionError> {
///     session.cycle_id().await?;
///     session.insert("user_id", 42).await?;
///     session
///         .set_expiry(if remember_me {
///             Expiry::OnInactivity(Duration::from_secs(30 * 24 * 3600))
///         } else {
///             Expiry::OnSessionEnd
///         })
///         .await
/// }
/// # let _ = login;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Expiry {
    /// The config's `max_age`, renewed on access if `renew_on_access` is
    /// set: what every session has until a handler chooses otherwise.
    #[default]
    Configured,
    /// A browser-session cookie (no `Max-Age`), ended by the browser when
    /// it closes; the stored session still expires `max_age` after its
    /// last write or renewal.
    OnSessionEnd,
    /// Ends after this long without a request: the cookie's `Max-Age` and
    /// the stored expiry are this duration, renewed on access (with
    /// `renew_threshold`) whatever `renew_on_access` says. Whole seconds,
    /// rounded up; 1 s to 400 days.
    OnInactivity(Duration),
    /// Ends at this point in time, however active; never renewed. Must be
    /// in the future and at most 400 days away.
    AtDateTime(SystemTime),
}

/// An [`Expiry`] as the stored session keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub(crate) enum StoredExpiry {
    OnSessionEnd,
    OnInactivity { secs: u64 },
    At { unix_ms: u64 },
}

impl Expiry {
    /// The stored form, `None` for [`Expiry::Configured`]; refused with
    /// [`SessionError::InvalidExpiry`] if out of range at `now_ms`.
    pub(crate) fn to_stored(self, now_ms: u64) -> Result<Option<StoredExpiry>, SessionError> {
        Ok(match self {
            Expiry::Configured => None,
            Expiry::OnSessionEnd => Some(StoredExpiry::OnSessionEnd),
            Expiry::OnInactivity(d) => {
                if d.is_zero() || d > MAX_MAX_AGE {
                    return Err(SessionError::InvalidExpiry(format!(
                        "Expiry::OnInactivity must be 1 s to 400 days, got {d:?}"
                    )));
                }
                Some(StoredExpiry::OnInactivity { secs: ceil_secs(d) })
            }
            Expiry::AtDateTime(at) => {
                let at_ms = unix_ms(at);
                if at_ms <= now_ms {
                    return Err(SessionError::InvalidExpiry(
                        "Expiry::AtDateTime must be in the future".into(),
                    ));
                }
                if at_ms - now_ms > millis(MAX_MAX_AGE) {
                    return Err(SessionError::InvalidExpiry(
                        "Expiry::AtDateTime must be at most 400 days away".into(),
                    ));
                }
                Some(StoredExpiry::At { unix_ms: at_ms })
            }
        })
    }

    /// The mode a stored one stands for; `None` for a fixed time this
    /// platform's `SystemTime` cannot represent (refused on load anyway:
    /// see [`Meta::split`]).
    pub(crate) fn from_stored(stored: Option<StoredExpiry>) -> Option<Self> {
        Some(match stored {
            None => Expiry::Configured,
            Some(StoredExpiry::OnSessionEnd) => Expiry::OnSessionEnd,
            Some(StoredExpiry::OnInactivity { secs }) => {
                Expiry::OnInactivity(Duration::from_secs(secs))
            }
            Some(StoredExpiry::At { unix_ms }) => {
                Expiry::AtDateTime(UNIX_EPOCH.checked_add(Duration::from_millis(unix_ms))?)
            }
        })
    }
}

/// How far ahead of this server's clock a stored creation time (or a
/// fixed expiry beyond the 400-day bound) may be: the clock skew allowed
/// between the servers sharing a store.
pub(crate) const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Why stored metadata was refused: named in the `tracing` event, which
/// never carries the stored values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvalidMeta {
    /// Not an object of the known fields and modes (a later version's
    /// mode, a field of the wrong type).
    Unreadable,
    /// An inactivity timeout outside 1 s to 400 days.
    Inactivity,
    /// A fixed expiry more than 400 days ahead (or not representable).
    FixedTime,
    /// A creation time in the future, beyond the clock skew allowed.
    Created,
    /// A client-side fingerprint seed that is not 24 hex digits.
    Seed,
}

impl InvalidMeta {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            InvalidMeta::Unreadable => "not readable",
            InvalidMeta::Inactivity => "inactivity timeout out of range",
            InvalidMeta::FixedTime => "fixed expiry out of range",
            InvalidMeta::Created => "creation time in the future",
            InvalidMeta::Seed => "fingerprint seed malformed",
        }
    }
}

/// The middleware's metadata of one session, stored under
/// [`METADATA_KEY`] when not empty:
///
/// ```json
/// {"created": 1700000000000, "expiry": {"mode": "on_inactivity", "secs": 2592000}}
/// ```
///
/// Times are Unix milliseconds. Unknown fields are ignored (a later
/// version may add some); a known field that does not parse, or is out of
/// range, makes the whole metadata invalid ([`Meta::split`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// When the session was first saved (Unix ms): kept only when
    /// `absolute_lifetime` is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) created: Option<u64>,
    /// The expiry mode; absent for [`Expiry::Configured`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expiry: Option<StoredExpiry>,
    /// Client-side sessions: a random value, fixed for the session's life,
    /// that [`Session::fingerprint`](crate::Session::fingerprint) hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fp: Option<String>,
}

impl Meta {
    pub(crate) fn is_empty(&self) -> bool {
        self.created.is_none() && self.expiry.is_none() && self.fp.is_none()
    }

    /// Takes the metadata out of a loaded session and checks it at `now`
    /// (Unix ms). Metadata that is present but unreadable or out of range
    /// is refused, never replaced by defaults: the caller ends the session
    /// (fail closed), so no field of it can be re-stamped or stretched.
    /// Never called under `litestar_compatible`, where the key is data.
    pub(crate) fn split(data: &mut Map<String, Value>, now: u64) -> Result<Meta, InvalidMeta> {
        let Some(value) = data.remove(METADATA_KEY) else {
            return Ok(Meta::default());
        };
        // serde's error may quote the value: it is dropped unread.
        let meta: Meta = serde_json::from_value(value).map_err(|_| InvalidMeta::Unreadable)?;
        meta.check(now)?;
        Ok(meta)
    }

    /// The bounds every stored field must be within at `now` (Unix ms).
    fn check(&self, now: u64) -> Result<(), InvalidMeta> {
        let skew = millis(CLOCK_SKEW);
        match self.expiry {
            None | Some(StoredExpiry::OnSessionEnd) => {}
            Some(StoredExpiry::OnInactivity { secs }) => {
                if !(1..=MAX_MAX_AGE.as_secs()).contains(&secs) {
                    return Err(InvalidMeta::Inactivity);
                }
            }
            Some(expiry @ StoredExpiry::At { unix_ms }) => {
                // Set at most 400 days ahead of the clock of the server
                // that stored it; a time already past is an ended session,
                // not invalid metadata.
                let latest = now.saturating_add(millis(MAX_MAX_AGE)).saturating_add(skew);
                if unix_ms > latest || Expiry::from_stored(Some(expiry)).is_none() {
                    return Err(InvalidMeta::FixedTime);
                }
            }
        }
        if self
            .created
            .is_some_and(|created| created > now.saturating_add(skew))
        {
            return Err(InvalidMeta::Created);
        }
        let seed_ok = |seed: &String| {
            seed.len() == SEED_HEX_DIGITS && seed.bytes().all(|b| b.is_ascii_hexdigit())
        };
        if !self.fp.as_ref().is_none_or(seed_ok) {
            return Err(InvalidMeta::Seed);
        }
        Ok(())
    }
}

/// The length of a client-side session's fingerprint seed: 12 random bytes
/// in hex.
pub(crate) const SEED_HEX_DIGITS: usize = 24;

/// The stored form of a session: its data with the metadata (if any)
/// under [`METADATA_KEY`], serialized without copying the data.
#[derive(Serialize)]
pub(crate) struct Stored<'a> {
    #[serde(flatten)]
    pub(crate) data: &'a Map<String, Value>,
    #[serde(rename = "__session_tower", skip_serializing_if = "Meta::is_empty")]
    pub(crate) meta: &'a Meta,
}

/// A short, non-secret identifier of the session stored under
/// `store_key`, for logs: the first 12 hex digits of the SHA-256 of a
/// label and the key. [`Session::fingerprint`](crate::Session::fingerprint)
/// gives the current session's; an operator can compute it from a row's
/// key to find the requests of that session in the logs. It reveals
/// nothing usable: 48 bits of a hash of the key, which is itself the
/// SHA-256 of the id (unless `hash_session_ids` is off).
///
/// ```
/// let fp = session_tower::fingerprint_of_key("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
/// assert_eq!(fp.len(), 12);
/// assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
/// ```
pub fn fingerprint_of_key(store_key: &str) -> String {
    fingerprint(b"session-tower fingerprint v1: store key\0", store_key)
}

/// The fingerprint of a client-side session's random `fp` seed.
pub(crate) fn fingerprint_of_seed(seed: &str) -> String {
    fingerprint(b"session-tower fingerprint v1: client-side seed\0", seed)
}

fn fingerprint(label: &[u8], input: &str) -> String {
    let digest = Sha256::new()
        .chain_update(label)
        .chain_update(input.as_bytes())
        .finalize();
    hex::encode(&digest[..6])
}

/// `t` in Unix milliseconds (0 before 1970).
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, millis)
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whole seconds, rounded up (a cookie's `Max-Age` says no more).
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_stays_out_of_the_data() {
        let mut data: Map<String, Value> = serde_json::from_str(
            r#"{"user":"alice","__session_tower":{"created":5,"expiry":{"mode":"on_inactivity","secs":60},"later":1}}"#,
        )
        .unwrap();
        let meta = Meta::split(&mut data, 1_700_000_000_000).unwrap();
        assert_eq!(meta.created, Some(5));
        assert_eq!(meta.expiry, Some(StoredExpiry::OnInactivity { secs: 60 }));
        assert_eq!(serde_json::to_string(&data).unwrap(), r#"{"user":"alice"}"#);
        let stored = serde_json::to_string(&Stored {
            data: &data,
            meta: &meta,
        })
        .unwrap();
        assert_eq!(
            stored,
            r#"{"user":"alice","__session_tower":{"created":5,"expiry":{"mode":"on_inactivity","secs":60}}}"#
        );
        // No metadata: the data alone.
        let empty = Meta::default();
        let stored = serde_json::to_string(&Stored {
            data: &data,
            meta: &empty,
        })
        .unwrap();
        assert_eq!(stored, r#"{"user":"alice"}"#);
        // Unreadable metadata is refused, never defaulted.
        let mut data: Map<String, Value> =
            serde_json::from_str(r#"{"a":1,"__session_tower":"junk"}"#).unwrap();
        assert_eq!(
            Meta::split(&mut data, 1_700_000_000_000),
            Err(InvalidMeta::Unreadable)
        );
    }

    #[test]
    fn stored_metadata_is_checked_on_load() {
        let now: u64 = 1_700_000_000_000;
        let day = 86_400_000;
        let split = |meta: String| {
            let mut data: Map<String, Value> =
                serde_json::from_str(&format!(r#"{{"a":1,"__session_tower":{meta}}}"#)).unwrap();
            let result = Meta::split(&mut data, now);
            assert_eq!(data.len(), 1, "the metadata is taken out either way");
            result
        };
        let refused = [
            (
                r#"{"expiry":"?","created":5}"#.to_owned(),
                InvalidMeta::Unreadable,
            ),
            (
                r#"{"expiry":{"mode":"later"}}"#.to_owned(),
                InvalidMeta::Unreadable,
            ),
            (r#"{"created":-1}"#.to_owned(), InvalidMeta::Unreadable),
            (
                r#"{"expiry":{"mode":"on_inactivity","secs":0}}"#.to_owned(),
                InvalidMeta::Inactivity,
            ),
            (
                format!(
                    r#"{{"expiry":{{"mode":"on_inactivity","secs":{}}}}}"#,
                    u64::MAX
                ),
                InvalidMeta::Inactivity,
            ),
            (
                format!(
                    r#"{{"expiry":{{"mode":"on_inactivity","secs":{}}}}}"#,
                    400 * 86_400 + 1
                ),
                InvalidMeta::Inactivity,
            ),
            (
                format!(r#"{{"expiry":{{"mode":"at","unix_ms":{}}}}}"#, u64::MAX),
                InvalidMeta::FixedTime,
            ),
            (
                format!(
                    r#"{{"expiry":{{"mode":"at","unix_ms":{}}}}}"#,
                    now + 401 * day
                ),
                InvalidMeta::FixedTime,
            ),
            (
                format!(r#"{{"created":{}}}"#, now + 6 * 60_000),
                InvalidMeta::Created,
            ),
            (
                format!(r#"{{"created":{}}}"#, u64::MAX),
                InvalidMeta::Created,
            ),
            (
                r#"{"fp":"not hex, not 24 digits"}"#.to_owned(),
                InvalidMeta::Seed,
            ),
        ];
        for (meta, why) in refused {
            assert_eq!(split(meta.clone()), Err(why), "{meta}");
        }
        let accepted = [
            "{}".to_owned(),
            r#"{"expiry":{"mode":"on_session_end"}}"#.to_owned(),
            r#"{"expiry":{"mode":"on_inactivity","secs":1}}"#.to_owned(),
            format!(
                r#"{{"expiry":{{"mode":"on_inactivity","secs":{}}}}}"#,
                400 * 86_400
            ),
            // A fixed time already past: an ended session, not invalid.
            r#"{"expiry":{"mode":"at","unix_ms":0}}"#.to_owned(),
            format!(
                r#"{{"expiry":{{"mode":"at","unix_ms":{}}}}}"#,
                now + 400 * day
            ),
            format!(r#"{{"created":{}}}"#, now + 4 * 60_000),
            r#"{"created":0,"fp":"0123456789abcdef01234567","later":{"x":1}}"#.to_owned(),
        ];
        for meta in accepted {
            assert!(split(meta.clone()).is_ok(), "{meta}");
        }
    }

    #[test]
    fn expiry_modes_are_checked() {
        let now = 1_700_000_000_000;
        assert_eq!(Expiry::Configured.to_stored(now).unwrap(), None);
        assert_eq!(
            Expiry::OnInactivity(Duration::from_millis(1500))
                .to_stored(now)
                .unwrap(),
            Some(StoredExpiry::OnInactivity { secs: 2 })
        );
        assert!(Expiry::OnInactivity(Duration::ZERO).to_stored(now).is_err());
        assert!(
            Expiry::OnInactivity(MAX_MAX_AGE + Duration::from_secs(1))
                .to_stored(now)
                .is_err()
        );
        let past = UNIX_EPOCH + Duration::from_millis(now - 1);
        assert!(Expiry::AtDateTime(past).to_stored(now).is_err());
        let soon = UNIX_EPOCH + Duration::from_millis(now + 60_000);
        let stored = Expiry::AtDateTime(soon).to_stored(now).unwrap();
        assert_eq!(Expiry::from_stored(stored), Some(Expiry::AtDateTime(soon)));
        // Checked: `None` where `SystemTime` cannot reach it, never a panic.
        let _ = Expiry::from_stored(Some(StoredExpiry::At { unix_ms: u64::MAX }));
    }

    #[test]
    fn fingerprints_are_short_and_separated() {
        let a = fingerprint_of_key("k");
        assert_eq!(a.len(), 12);
        assert_ne!(a, fingerprint_of_seed("k"));
        assert_eq!(a, fingerprint_of_key("k"));
    }
}
