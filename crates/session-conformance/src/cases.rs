//! The cases: one function per row and rule of the `Store` contract.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use session_core::{Error, Store};

use crate::{Skip, StoreFactory};

/// Why a case did not pass.
pub(crate) enum CaseError {
    Failed(String),
    Skipped(String),
    /// The store answered too slowly for the check to mean anything (no
    /// read came back close enough to an expiry): the case is run again,
    /// and fails after [`ATTEMPTS`] such runs. Never a pass, never a skip.
    Inconclusive(String),
}

impl From<Skip> for CaseError {
    fn from(skip: Skip) -> Self {
        CaseError::Skipped(skip.0)
    }
}

impl From<Error> for CaseError {
    fn from(err: Error) -> Self {
        CaseError::Failed(format!(
            "unexpected error: {}",
            session_core::error_chain(&err)
        ))
    }
}

type CaseResult = Result<(), CaseError>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(CaseError::Failed(format!($($msg)+)));
        }
    };
}

/// The precision every store guarantees: a key is gone at most this long
/// after its expiry time.
const PRECISION: Duration = Duration::from_secs(1);
/// Scheduling slack added to waits that must cross an expiry.
const SLACK: Duration = Duration::from_millis(250);
/// The expiry used by cases that wait for a key to expire.
const SHORT: Duration = Duration::from_secs(1);
/// An expiry no case outlives.
const LONG: Duration = Duration::from_secs(3600);

/// "Never early" probes start this long before a key's expiry ...
const PROBE_LEAD: Duration = Duration::from_millis(200);
/// ... read every this often ...
const PROBE_STEP: Duration = Duration::from_millis(5);
/// ... and back to back over the last this long before it.
const PROBE_BURST: Duration = Duration::from_millis(20);
/// The last read of each read path that came back before the expiry must
/// have started at most this long before it, or the check is inconclusive
/// and the case runs again. Reads come back in microseconds from memory and
/// in about a millisecond from a local database, so the reads usually get
/// much closer; this bounds how slow a store may be and still be checked.
const PROBE_WINDOW: Duration = Duration::from_millis(100);
/// How often a case whose check was inconclusive runs before it fails.
const ATTEMPTS: usize = 3;

fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

fn bytes(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// A value of `len` bytes that covers every byte value, NUL included.
fn patterned(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seed as u32) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Sleeps until `at`. The case gives back its slot first: while it sleeps,
/// other cases may work.
async fn pause_until(at: Instant) {
    crate::suite::release_slot();
    tokio::time::sleep_until(at.into()).await;
}

/// Sleeps until `written + expires_in + PRECISION + SLACK`, with `written`
/// taken when the write *returned*: past the last moment the key may still
/// be visible, however long the write took.
async fn wait_past_expiry(written: Instant, expires_in: Duration) {
    pause_until(written + expires_in + PRECISION + SLACK).await;
}

/// When a key got its expiry: the store read its clock at some moment
/// between `before` (the write was called) and `after` (it returned).
#[derive(Debug, Clone, Copy)]
struct Written {
    before: Instant,
    after: Instant,
    ttl: Duration,
}

impl Written {
    /// The earliest the key may expire: `ttl` after the write was called.
    fn expiry(&self) -> Instant {
        self.before + self.ttl
    }
}

/// Runs `write` (one that gives a key the expiry `ttl`), noting when.
async fn timed<T>(
    ttl: Duration,
    write: impl Future<Output = session_core::Result<T>>,
) -> Result<(T, Written), CaseError> {
    let before = Instant::now();
    let out = write.await?;
    let after = Instant::now();
    Ok((out, Written { before, after, ttl }))
}

/// The read paths "never early" probes, in the order it probes them.
const READ_PATHS: [&str; 3] = ["get", "exists", "expires_in"];

/// Whether `key` is there, read on the path `READ_PATHS[path]`.
async fn visible<S: Store + ?Sized>(
    s: &S,
    key: &str,
    value: &Bytes,
    path: usize,
) -> Result<bool, CaseError> {
    Ok(match path {
        0 => match s.get(key, None).await? {
            None => false,
            Some(got) if got == *value => true,
            other => {
                return Err(CaseError::Failed(format!(
                    "get of `{key}` returned {}, expected {}",
                    describe(&other),
                    describe(&Some(value.clone()))
                )));
            }
        },
        1 => s.exists(key).await?,
        _ => match s.expires_in(key).await? {
            Some(_) => true,
            // Gone, or there without an expiry: the write lost it (a
            // sub-second duration that became zero, "never expires").
            None if s.exists(key).await? => {
                return Err(CaseError::Failed(format!(
                    "`expires_in` of `{key}` returned None while the key exists: it was written with an expiry and has none"
                )));
            }
            None => false,
        },
    })
}

/// "Never early": reads `key` on every read path, more and more often as
/// its expiry approaches, up to the expiry itself. Every read that comes
/// back before the expiry must see the key (whatever the backend's
/// precision, a store rounds expiry up, never down). The last such read of
/// each path must have started at most [`PROBE_WINDOW`] before the expiry,
/// or the check is [`CaseError::Inconclusive`]: never passed unchecked.
async fn never_early<S: Store + ?Sized>(
    s: &S,
    key: &str,
    value: &Bytes,
    written: Written,
    what: &str,
) -> CaseResult {
    let expiry = written.expiry();
    pause_until(expiry.checked_sub(PROBE_LEAD).unwrap_or(expiry)).await;
    // Per read path: when the latest read that saw the key, and came back
    // before the expiry, started.
    let mut closest: [Option<Instant>; 3] = [None; 3];
    'probing: loop {
        for (path, name) in READ_PATHS.iter().enumerate() {
            let start = Instant::now();
            if start >= expiry {
                break 'probing;
            }
            let seen = match visible(s, key, value, path).await {
                Err(CaseError::Failed(why)) => {
                    return Err(CaseError::Failed(format!("{what}: {why}")));
                }
                other => other?,
            };
            let end = Instant::now();
            if end >= expiry {
                // The store may have read its clock after the expiry:
                // whatever it saw proves nothing.
                break 'probing;
            }
            ensure!(
                seen,
                "{what}: `{name}` found the key gone {:?} before its expiry, {:?} after the write (expired early)",
                expiry - end,
                end - written.before
            );
            closest[path] = Some(start);
        }
        let left = expiry.saturating_duration_since(Instant::now());
        if left > PROBE_BURST {
            tokio::time::sleep((left - PROBE_BURST).min(PROBE_STEP)).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
    for (path, name) in READ_PATHS.iter().enumerate() {
        match closest[path] {
            Some(start) if expiry - start <= PROBE_WINDOW => {}
            Some(start) => {
                return Err(CaseError::Inconclusive(format!(
                    "{what}: the last `{name}` that came back before the expiry started {:?} before it (more than {PROBE_WINDOW:?})",
                    expiry - start
                )));
            }
            None => {
                return Err(CaseError::Inconclusive(format!(
                    "{what}: no `{name}` came back before the expiry"
                )));
            }
        }
    }
    Ok(())
}

/// "Gone within a second": past `PRECISION` (and some slack) after the
/// expiry, counted from when the write returned, `key` is gone on every read
/// path.
async fn gone_within_a_second<S: Store + ?Sized>(
    s: &S,
    key: &str,
    written: Written,
    what: &str,
) -> CaseResult {
    wait_past_expiry(written.after, written.ttl).await;
    let when = format!(
        "{what}, {:?} after the write (more than {PRECISION:?} past its expiry)",
        written.before.elapsed()
    );
    expect_gone(s, key, &when).await
}

/// Both halves of the expiry rule, for one key.
async fn expires_on_time<S: Store + ?Sized>(
    s: &S,
    key: &str,
    value: &Bytes,
    written: Written,
    what: &str,
) -> CaseResult {
    never_early(s, key, value, written, what).await?;
    gone_within_a_second(s, key, written, what).await
}

/// The first failure of `results`, else the first inconclusive check.
fn first_failure(results: Vec<CaseResult>) -> CaseResult {
    let mut inconclusive = None;
    for result in results {
        match result {
            Ok(()) => {}
            Err(CaseError::Inconclusive(why)) => {
                inconclusive.get_or_insert(CaseError::Inconclusive(why));
            }
            Err(failed) => return Err(failed),
        }
    }
    inconclusive.map_or(Ok(()), Err)
}

/// Runs `attempt` until its check is conclusive, at most [`ATTEMPTS`] times.
async fn retrying<Fut: Future<Output = CaseResult>>(
    mut attempt: impl FnMut() -> Fut,
) -> CaseResult {
    let mut why = String::new();
    for _ in 0..ATTEMPTS {
        match attempt().await {
            Err(CaseError::Inconclusive(w)) => why = w,
            other => return other,
        }
    }
    Err(CaseError::Failed(format!(
        "the store answered too slowly to check that keys never expire early, in {ATTEMPTS} attempts; the last: {why}"
    )))
}

/// Gives five keys expiries of `ttls`, one through each write that sets an
/// expiry (`set`, `create`, `update` of a live key, a renewing `get`,
/// `compare_and_set` of a live key), and checks each expires on time: never
/// early, gone within a second.
async fn every_write_expires_on_time<F: StoreFactory>(f: &F, ttls: [Duration; 5]) -> CaseResult {
    let s = f.new_store().await?;
    let v = bytes("v");
    let [set_ttl, create_ttl, update_ttl, renew_ttl, cas_ttl] = ttls;
    s.set("update", bytes("old"), Some(LONG)).await?;
    s.set("renew", v.clone(), Some(LONG)).await?;
    s.set("cas", bytes("old"), Some(LONG)).await?;

    let ((), set) = timed(set_ttl, s.set("set", v.clone(), Some(set_ttl))).await?;
    let (wrote, created) =
        timed(create_ttl, s.create("create", v.clone(), Some(create_ttl))).await?;
    ensure!(wrote, "create of a missing key returned false");
    let (wrote, updated) =
        timed(update_ttl, s.update("update", v.clone(), Some(update_ttl))).await?;
    ensure!(wrote, "update of a live key returned false");
    let (got, renewed) = timed(renew_ttl, s.get("renew", Some(renew_ttl))).await?;
    ensure!(
        got.as_ref() == Some(&v),
        "renewing get returned {}",
        describe(&got)
    );
    let (wrote, swapped) = timed(
        cas_ttl,
        s.compare_and_set("cas", bytes("old"), v.clone(), Some(cas_ttl)),
    )
    .await?;
    ensure!(
        wrote,
        "compare_and_set of a live key from its value returned false"
    );

    let what = |op: &str, ttl: Duration| format!("`{op}` with {ttl:?}");
    let (set_what, create_what) = (what("set", set_ttl), what("create", create_ttl));
    let (update_what, renew_what) = (
        what("update", update_ttl),
        what("get renewing for", renew_ttl),
    );
    let cas_what = what("compare_and_set", cas_ttl);
    first_failure(
        join_all([
            expires_on_time(&s, "set", &v, set, &set_what),
            expires_on_time(&s, "create", &v, created, &create_what),
            expires_on_time(&s, "update", &v, updated, &update_what),
            expires_on_time(&s, "renew", &v, renewed, &renew_what),
            expires_on_time(&s, "cas", &v, swapped, &cas_what),
        ])
        .await,
    )
}

fn describe(value: &Option<Bytes>) -> String {
    match value {
        None => "None".into(),
        Some(v) if v.len() <= 32 => format!("Some({v:?})"),
        Some(v) => format!("Some(<{} bytes>)", v.len()),
    }
}

fn near(actual: Option<Duration>, expected: Duration) -> bool {
    // Stores of second precision may round the expiry up by up to a second;
    // none may shorten it by more than the time the case took.
    actual.is_some_and(|a| a + Duration::from_secs(2) >= expected && a <= expected + PRECISION)
}

async fn expect_gone<S: Store + ?Sized>(store: &S, key: &str, when: &str) -> CaseResult {
    let value = store.get(key, None).await?;
    ensure!(
        value.is_none(),
        "{when}: get returned {}, expected None",
        describe(&value)
    );
    ensure!(!store.exists(key).await?, "{when}: exists returned true");
    let ttl = store.expires_in(key).await?;
    ensure!(
        ttl.is_none(),
        "{when}: expires_in returned {ttl:?}, expected None"
    );
    Ok(())
}

fn expect_invalid_key<T: std::fmt::Debug>(result: session_core::Result<T>, op: &str) -> CaseResult {
    match result {
        Err(Error::InvalidKey { .. }) => Ok(()),
        Err(other) => Err(CaseError::Failed(format!(
            "{op}: expected Error::InvalidKey, got the error {}",
            session_core::error_chain(&other)
        ))),
        Ok(v) => Err(CaseError::Failed(format!(
            "{op}: expected Error::InvalidKey, got Ok({v:?})"
        ))),
    }
}

async fn round_trip<S: Store + ?Sized>(store: &S, key: &str, value: Bytes) -> CaseResult {
    store.set(key, value.clone(), Some(LONG)).await?;
    let got = store.get(key, None).await?;
    ensure!(
        got.as_ref() == Some(&value),
        "a {}-byte value came back as {}",
        value.len(),
        describe(&got)
    );
    // The renewing read path returns the same bytes.
    let renewed = store.get(key, Some(LONG)).await?;
    ensure!(
        renewed.as_ref() == Some(&value),
        "a {}-byte value came back from a renewing get as {}",
        value.len(),
        describe(&renewed)
    );
    Ok(())
}

/// A key for a failure message: whole if short, else its length, start and
/// end (the keys of 200 bytes and more differ only at the end).
fn show_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 24 {
        return format!("{key:?}");
    }
    let head: String = chars[..8].iter().collect();
    let tail: String = chars[chars.len() - 8..].iter().collect();
    format!("the {}-byte key {head:?}...{tail:?}", key.len())
}

/// Writes each of `keys` (all distinct, all valid) with a value of its own
/// and checks each reads back its own value; then deletes the first and
/// checks it alone is gone.
async fn keys_stay_distinct<S: Store + ?Sized>(s: &S, what: &str, keys: &[&str]) -> CaseResult {
    let value = |i: usize| Bytes::from(format!("value of key #{i}"));
    let owner = |got: &Option<Bytes>| {
        (0..keys.len())
            .find(|&j| got.as_ref() == Some(&value(j)))
            .map(|j| show_key(keys[j]))
    };
    let check = |i: usize, got: Option<Bytes>, when: &str| -> CaseResult {
        if got.as_ref() == Some(&value(i)) {
            return Ok(());
        }
        Err(CaseError::Failed(match owner(&got) {
            Some(other) => format!(
                "{what}: {when}{} reads back the value written under {other}: the store does not keep them distinct",
                show_key(keys[i])
            ),
            None => format!(
                "{what}: {when}{} reads back {}, not its own value",
                show_key(keys[i]),
                describe(&got)
            ),
        }))
    };
    for (i, key) in keys.iter().enumerate() {
        s.set(key, value(i), Some(LONG)).await?;
    }
    for (i, key) in keys.iter().enumerate() {
        check(i, s.get(key, None).await?, "")?;
    }
    s.delete(keys[0]).await?;
    let first = show_key(keys[0]);
    expect_gone(s, keys[0], &format!("{what}: after delete of {first}")).await?;
    for (i, key) in keys.iter().enumerate().skip(1) {
        check(
            i,
            s.get(key, None).await?,
            &format!("after delete of {first}, "),
        )?;
    }
    Ok(())
}

mod list {
    use super::*;

    pub(super) async fn get_missing_is_none<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        let got = s.get("missing", None).await?;
        ensure!(
            got.is_none(),
            "get of a missing key returned {}",
            describe(&got)
        );
        let got = s.get("missing", Some(LONG)).await?;
        ensure!(
            got.is_none(),
            "renewing get of a missing key returned {}",
            describe(&got)
        );
        Ok(())
    }

    pub(super) async fn set_then_get_round_trips<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("value"), Some(LONG)).await?;
        let got = s.get("k", None).await?;
        ensure!(
            got == Some(bytes("value")),
            "get after set returned {}",
            describe(&got)
        );
        Ok(())
    }

    pub(super) async fn set_replaces_the_value<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("first"), Some(LONG)).await?;
        s.set("k", bytes("second"), Some(LONG)).await?;
        let got = s.get("k", None).await?;
        ensure!(
            got == Some(bytes("second")),
            "after two sets get returned {}",
            describe(&got)
        );
        Ok(())
    }

    pub(super) async fn set_without_expiry_never_expires<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("v"), None).await?;
        ensure!(
            s.exists("k").await?,
            "a key set without expiry does not exist"
        );
        let ttl = s.expires_in("k").await?;
        ensure!(
            ttl.is_none(),
            "a key set without expiry has expires_in {ttl:?}"
        );
        Ok(())
    }

    pub(super) async fn set_with_zero_expiry_never_expires<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("v"), Some(Duration::ZERO)).await?;
        ensure!(
            s.exists("k").await?,
            "a key set with zero expiry does not exist (zero means never)"
        );
        let ttl = s.expires_in("k").await?;
        ensure!(
            ttl.is_none(),
            "a key set with zero expiry has expires_in {ttl:?}, expected None"
        );
        Ok(())
    }

    pub(super) async fn set_resets_expiry<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("v"), secs(100)).await?;
        s.set("k", bytes("v"), secs(1000)).await?;
        let ttl = s.expires_in("k").await?;
        ensure!(
            near(ttl, Duration::from_secs(1000)),
            "set with 1000 s after 100 s: expires_in {ttl:?}"
        );
        s.set("k", bytes("v"), None).await?;
        let ttl = s.expires_in("k").await?;
        ensure!(
            ttl.is_none(),
            "set without expiry after 1000 s: expires_in {ttl:?}, expected None"
        );
        s.set("k", bytes("v"), secs(50)).await?;
        let ttl = s.expires_in("k").await?;
        ensure!(
            near(ttl, Duration::from_secs(50)),
            "set with 50 s after no expiry: expires_in {ttl:?}"
        );
        Ok(())
    }

    pub(super) async fn expires_in_reports_remaining_time<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("v"), secs(60)).await?;
        let ttl = s.expires_in("k").await?;
        ensure!(
            near(ttl, Duration::from_secs(60)),
            "set with 60 s: expires_in {ttl:?}"
        );
        Ok(())
    }

    pub(super) async fn expires_in_of_missing_is_none<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        let ttl = s.expires_in("missing").await?;
        ensure!(ttl.is_none(), "expires_in of a missing key: {ttl:?}");
        Ok(())
    }

    pub(super) async fn expired_keys_are_invisible_everywhere<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("v"), Some(SHORT)).await?;
        wait_past_expiry(Instant::now(), SHORT).await;
        expect_gone(&s, "k", "after expiry, before any cleanup").await
    }

    pub(super) async fn never_early_and_gone_within_a_second<F: StoreFactory>(f: &F) -> CaseResult {
        retrying(|| async {
            let s = f.new_store().await?;
            let ((), written) = timed(SHORT, s.set("k", bytes("v"), Some(SHORT))).await?;
            expires_on_time(&s, "k", &bytes("v"), written, "`set` with 1s").await
        })
        .await
    }

    pub(super) async fn expiry_of_half_a_second_is_kept<F: StoreFactory>(f: &F) -> CaseResult {
        // 500 ms is not zero: a store that converts with `as_secs()` makes
        // it "never expires", and the key is still there a second later.
        let half = Duration::from_millis(500);
        retrying(|| every_write_expires_on_time(f, [half; 5])).await
    }

    pub(super) async fn fractional_seconds_are_never_rounded_down<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        // Rounded down (or to the nearest second, for 1.25 s), each of these
        // expires early; a whole-second backend rounds them up.
        let ms = Duration::from_millis;
        retrying(|| {
            every_write_expires_on_time(f, [ms(1250), ms(1500), ms(1750), ms(1250), ms(1500)])
        })
        .await
    }

    pub(super) async fn renew_extends_expiry<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("v"), secs(10)).await?;
        s.get("k", secs(500)).await?;
        let ttl = s.expires_in("k").await?;
        ensure!(
            near(ttl, Duration::from_secs(500)),
            "get renewing for 500 s: expires_in {ttl:?}"
        );
        // Renewal may also shorten: the expiry becomes now + renew_for.
        s.get("k", secs(100)).await?;
        let ttl = s.expires_in("k").await?;
        ensure!(
            near(ttl, Duration::from_secs(100)),
            "get renewing for 100 s: expires_in {ttl:?}"
        );
        Ok(())
    }

    pub(super) async fn renew_returns_the_value<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("v"), secs(10)).await?;
        let got = s.get("k", secs(100)).await?;
        ensure!(
            got == Some(bytes("v")),
            "renewing get returned {}",
            describe(&got)
        );
        s.set("p", bytes("permanent"), None).await?;
        let got = s.get("p", secs(100)).await?;
        ensure!(
            got == Some(bytes("permanent")),
            "renewing get of a key without expiry returned {}",
            describe(&got)
        );
        Ok(())
    }

    pub(super) async fn renew_leaves_permanent_key_permanent<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("p", bytes("v"), None).await?;
        s.get("p", secs(100)).await?;
        let ttl = s.expires_in("p").await?;
        ensure!(
            ttl.is_none(),
            "a renewing get gave a key without expiry the expiry {ttl:?}"
        );
        Ok(())
    }

    pub(super) async fn renew_does_not_revive_expired_key<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("v"), Some(SHORT)).await?;
        wait_past_expiry(Instant::now(), SHORT).await;
        let got = s.get("k", Some(LONG)).await?;
        ensure!(
            got.is_none(),
            "renewing get of an expired key returned {}",
            describe(&got)
        );
        expect_gone(&s, "k", "after a renewing get of an expired key").await
    }

    pub(super) async fn renew_of_zero_does_not_renew<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("v"), secs(300)).await?;
        let got = s.get("k", Some(Duration::ZERO)).await?;
        ensure!(
            got == Some(bytes("v")),
            "get with renew_for zero returned {}",
            describe(&got)
        );
        let ttl = s.expires_in("k").await?;
        ensure!(
            near(ttl, Duration::from_secs(300)),
            "after renew_for zero: expires_in {ttl:?}, expected about 300 s"
        );
        Ok(())
    }

    pub(super) async fn delete_removes_the_key<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("v"), Some(LONG)).await?;
        s.set("other", bytes("w"), Some(LONG)).await?;
        s.delete("k").await?;
        expect_gone(&s, "k", "after delete").await?;
        ensure!(
            s.exists("other").await?,
            "delete of one key removed another"
        );
        Ok(())
    }

    pub(super) async fn delete_of_missing_key_is_ok<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.delete("missing").await?;
        s.set("k", bytes("v"), None).await?;
        s.delete("k").await?;
        s.delete("k").await?;
        Ok(())
    }

    pub(super) async fn delete_all_empties_the_store<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        for i in 0..10 {
            let ttl = if i % 2 == 0 { None } else { Some(LONG) };
            s.set(&format!("k{i}"), bytes("v"), ttl).await?;
        }
        s.delete_all().await?;
        for i in 0..10 {
            ensure!(
                !s.exists(&format!("k{i}")).await?,
                "key k{i} survived delete_all"
            );
        }
        s.set("after", bytes("v"), None).await?;
        ensure!(
            s.exists("after").await?,
            "the store is unusable after delete_all"
        );
        Ok(())
    }

    pub(super) async fn exists_tracks_presence<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        ensure!(
            !s.exists("k").await?,
            "exists of a missing key returned true"
        );
        s.set("k", bytes("v"), Some(LONG)).await?;
        ensure!(s.exists("k").await?, "exists after set returned false");
        s.delete("k").await?;
        ensure!(!s.exists("k").await?, "exists after delete returned true");
        Ok(())
    }

    pub(super) async fn delete_expired_counts_exactly<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        for i in 0..3 {
            s.set(&format!("expired{i}"), bytes("v"), Some(SHORT))
                .await?;
        }
        let written = Instant::now();
        for i in 0..2 {
            s.set(&format!("live{i}"), bytes("v"), Some(LONG)).await?;
        }
        s.set("permanent", bytes("v"), None).await?;
        wait_past_expiry(written, SHORT).await;
        let removed = s.delete_expired().await?;
        // A server that expires keys itself left nothing to remove.
        let expected = if s.expires_by_itself().is_some() {
            0
        } else {
            3
        };
        ensure!(
            removed == expected,
            "delete_expired with 3 expired rows returned {removed}, expected {expected} (expires_by_itself: {:?})",
            s.expires_by_itself()
        );
        for i in 0..3 {
            let key = format!("expired{i}");
            ensure!(
                !s.exists(&key).await?,
                "`{key}` is still there after its expiry and delete_expired"
            );
        }
        for key in ["live0", "live1", "permanent"] {
            let got = s.get(key, None).await?;
            ensure!(
                got == Some(bytes("v")),
                "delete_expired touched `{key}`: get returned {}",
                describe(&got)
            );
        }
        let again = s.delete_expired().await?;
        ensure!(again == 0, "a second delete_expired returned {again}");
        Ok(())
    }

    pub(super) async fn delete_expired_on_empty_store_is_zero<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        let s = f.new_store().await?;
        let removed = s.delete_expired().await?;
        ensure!(
            removed == 0,
            "delete_expired on an empty store returned {removed}"
        );
        Ok(())
    }

    pub(super) async fn create_writes_a_missing_key<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        let wrote = s.create("k", bytes("v"), secs(100)).await?;
        ensure!(wrote, "create of a missing key returned false");
        let got = s.get("k", None).await?;
        ensure!(
            got == Some(bytes("v")),
            "get after create returned {}",
            describe(&got)
        );
        let ttl = s.expires_in("k").await?;
        ensure!(
            near(ttl, Duration::from_secs(100)),
            "create with 100 s: expires_in {ttl:?}"
        );
        Ok(())
    }

    pub(super) async fn create_refuses_a_live_key<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("original"), Some(LONG)).await?;
        let wrote = s.create("k", bytes("intruder"), Some(LONG)).await?;
        ensure!(!wrote, "create over a live key returned true");
        let got = s.get("k", None).await?;
        ensure!(
            got == Some(bytes("original")),
            "create over a live key changed it to {}",
            describe(&got)
        );
        s.set("p", bytes("original"), None).await?;
        let wrote = s.create("p", bytes("intruder"), None).await?;
        ensure!(
            !wrote,
            "create over a live key without expiry returned true"
        );
        Ok(())
    }

    pub(super) async fn create_replaces_an_expired_row<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("old"), Some(SHORT)).await?;
        wait_past_expiry(Instant::now(), SHORT).await;
        let wrote = s.create("k", bytes("new"), secs(100)).await?;
        ensure!(wrote, "create over an expired row returned false");
        let got = s.get("k", None).await?;
        ensure!(
            got == Some(bytes("new")),
            "get after create over an expired row returned {}",
            describe(&got)
        );
        let ttl = s.expires_in("k").await?;
        ensure!(
            near(ttl, Duration::from_secs(100)),
            "create with 100 s over an expired row: expires_in {ttl:?}"
        );
        Ok(())
    }

    pub(super) async fn update_refuses_a_missing_key<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        let wrote = s.update("k", bytes("v"), Some(LONG)).await?;
        ensure!(!wrote, "update of a missing key returned true");
        expect_gone(&s, "k", "after update of a missing key").await
    }

    pub(super) async fn update_refuses_an_expired_key<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("old"), Some(SHORT)).await?;
        wait_past_expiry(Instant::now(), SHORT).await;
        let wrote = s.update("k", bytes("new"), Some(LONG)).await?;
        ensure!(!wrote, "update of an expired key returned true");
        expect_gone(&s, "k", "after update of an expired key").await
    }

    pub(super) async fn update_writes_a_live_key<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("old"), secs(10)).await?;
        let wrote = s.update("k", bytes("new"), secs(500)).await?;
        ensure!(wrote, "update of a live key returned false");
        let got = s.get("k", None).await?;
        ensure!(
            got == Some(bytes("new")),
            "get after update returned {}",
            describe(&got)
        );
        let ttl = s.expires_in("k").await?;
        ensure!(
            near(ttl, Duration::from_secs(500)),
            "update with 500 s: expires_in {ttl:?}"
        );
        s.set("p", bytes("old"), None).await?;
        let wrote = s.update("p", bytes("new"), None).await?;
        ensure!(wrote, "update of a live key without expiry returned false");
        let ttl = s.expires_in("p").await?;
        ensure!(ttl.is_none(), "update without expiry: expires_in {ttl:?}");
        Ok(())
    }

    pub(super) async fn compare_and_set_writes_a_live_key<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("old"), secs(10)).await?;
        let wrote = s
            .compare_and_set("k", bytes("old"), bytes("new"), secs(500))
            .await?;
        ensure!(
            wrote,
            "compare_and_set of a live key from its value returned false"
        );
        let got = s.get("k", None).await?;
        ensure!(
            got == Some(bytes("new")),
            "get after compare_and_set returned {}",
            describe(&got)
        );
        let ttl = s.expires_in("k").await?;
        ensure!(
            near(ttl, Duration::from_secs(500)),
            "compare_and_set with 500 s after 10 s: expires_in {ttl:?}"
        );
        // The expiry is reset as `set` resets it: None and zero mean none,
        // and a key without expiry is given one.
        let steps: [(&str, &str, Option<Duration>); 4] = [
            ("new", "v1", None),
            ("v1", "v2", secs(50)),
            ("v2", "v3", Some(Duration::ZERO)),
            ("v3", "v4", secs(70)),
        ];
        for (from, to, expires_in) in steps {
            let wrote = s
                .compare_and_set("k", bytes(from), bytes(to), expires_in)
                .await?;
            ensure!(
                wrote,
                "compare_and_set from {from:?} to {to:?} with {expires_in:?} returned false"
            );
            let got = s.get("k", None).await?;
            ensure!(
                got == Some(bytes(to)),
                "compare_and_set to {to:?} with {expires_in:?}: get returned {}",
                describe(&got)
            );
            let ttl = s.expires_in("k").await?;
            match session_core::non_zero(expires_in) {
                None => ensure!(
                    ttl.is_none(),
                    "compare_and_set with {expires_in:?} (never expires): expires_in {ttl:?}, expected None"
                ),
                Some(d) => ensure!(
                    near(ttl, d),
                    "compare_and_set with {expires_in:?}: expires_in {ttl:?}"
                ),
            }
        }
        // Any bytes compare, the empty value included, and a value may be
        // set to itself.
        s.set("e", Bytes::new(), Some(LONG)).await?;
        let wrote = s
            .compare_and_set("e", Bytes::new(), Bytes::new(), Some(LONG))
            .await?;
        ensure!(
            wrote,
            "compare_and_set of the empty value to itself returned false"
        );
        let binary = Bytes::from_static(b"\0\xff\0bin\xfe");
        let wrote = s
            .compare_and_set("e", Bytes::new(), binary.clone(), Some(LONG))
            .await?;
        ensure!(wrote, "compare_and_set from the empty value returned false");
        let wrote = s
            .compare_and_set("e", binary, bytes("text"), Some(LONG))
            .await?;
        ensure!(
            wrote,
            "compare_and_set from a value with NUL bytes returned false"
        );
        let got = s.get("e", None).await?;
        ensure!(
            got == Some(bytes("text")),
            "after compare_and_sets from the empty and a binary value, get returned {}",
            describe(&got)
        );
        Ok(())
    }

    pub(super) async fn compare_and_set_refuses_a_changed_value<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("loaded"), secs(100)).await?;
        s.set("k", bytes("changed"), secs(100)).await?;
        let wrote = s
            .compare_and_set("k", bytes("loaded"), bytes("mine"), secs(500))
            .await?;
        ensure!(
            !wrote,
            "compare_and_set against a changed value returned true"
        );
        // Byte for byte: a prefix, another case, a trailing NUL, the
        // empty value; and no expiry (`None`) changes nothing either.
        let near_misses: [&'static [u8]; 5] =
            [b"change", b"Changed", b"changed\0", b"changed ", b""];
        for expected in near_misses {
            let expected = Bytes::from_static(expected);
            for expires_in in [secs(500), None] {
                let wrote = s
                    .compare_and_set("k", expected.clone(), bytes("mine"), expires_in)
                    .await?;
                ensure!(
                    !wrote,
                    "compare_and_set against a changed value returned true (stored \"changed\", expected {expected:?}, with {expires_in:?})"
                );
            }
        }
        let got = s.get("k", None).await?;
        ensure!(
            got == Some(bytes("changed")),
            "a refused compare_and_set changed the value to {}",
            describe(&got)
        );
        let ttl = s.expires_in("k").await?;
        ensure!(
            near(ttl, Duration::from_secs(100)),
            "a refused compare_and_set changed the expiry: expires_in {ttl:?}, expected about 100 s"
        );
        Ok(())
    }

    pub(super) async fn compare_and_set_compares_large_values_whole<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        // Above 32 KiB (and Oracle's 32767-byte RAW) and at 1 MiB: a store
        // that compares a prefix, a length or a hash of a large value is
        // caught by an expected value one byte off, at either end.
        let s = f.new_store().await?;
        for (len, seed) in [(32 * 1024 + 1, 4), (1024 * 1024, 6)] {
            let stored = patterned(len, seed);
            s.set("k", stored.clone(), Some(LONG)).await?;
            let flipped = |at: usize| {
                let mut v = stored.to_vec();
                v[at] ^= 1;
                Bytes::from(v)
            };
            let near_misses = [
                (flipped(0), "differs in the first byte"),
                (flipped(len - 1), "differs in the last byte"),
                (stored.slice(..len - 1), "lacks the last byte"),
            ];
            for (expected, how) in near_misses {
                let wrote = s
                    .compare_and_set("k", expected, bytes("mine"), Some(LONG))
                    .await?;
                ensure!(
                    !wrote,
                    "compare_and_set against a {len}-byte value returned true for an expected value that {how}"
                );
            }
            let next = patterned(len, seed + 1);
            let wrote = s
                .compare_and_set("k", stored, next.clone(), Some(LONG))
                .await?;
            ensure!(
                wrote,
                "compare_and_set of a {len}-byte value from itself returned false"
            );
            let got = s.get("k", None).await?;
            ensure!(
                got.as_ref() == Some(&next),
                "a {len}-byte value written by compare_and_set came back as {}",
                describe(&got)
            );
        }
        Ok(())
    }

    pub(super) async fn compare_and_set_refuses_an_expired_row<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("loaded"), Some(SHORT)).await?;
        wait_past_expiry(Instant::now(), SHORT).await;
        for expires_in in [Some(LONG), None] {
            let wrote = s
                .compare_and_set("k", bytes("loaded"), bytes("mine"), expires_in)
                .await?;
            ensure!(
                !wrote,
                "compare_and_set against an expired row returned true (with {expires_in:?})"
            );
        }
        expect_gone(&s, "k", "after compare_and_set against an expired row").await
    }

    pub(super) async fn compare_and_set_refuses_a_missing_key<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        let s = f.new_store().await?;
        // Missing is not the empty value.
        for expected in [bytes("loaded"), Bytes::new()] {
            for expires_in in [Some(LONG), None] {
                let wrote = s
                    .compare_and_set("k", expected.clone(), bytes("mine"), expires_in)
                    .await?;
                ensure!(
                    !wrote,
                    "compare_and_set against a missing key returned true (expected {expected:?}, with {expires_in:?})"
                );
            }
        }
        expect_gone(&s, "k", "after compare_and_set against a missing key").await?;
        s.set("other", bytes("loaded"), Some(LONG)).await?;
        s.delete("other").await?;
        let wrote = s
            .compare_and_set("other", bytes("loaded"), bytes("mine"), Some(LONG))
            .await?;
        ensure!(
            !wrote,
            "compare_and_set against a deleted key returned true"
        );
        expect_gone(&s, "other", "after compare_and_set against a deleted key").await
    }

    pub(super) async fn delete_live_removes_a_live_key<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("v"), Some(LONG)).await?;
        s.set("p", bytes("v"), None).await?;
        s.set("other", bytes("w"), Some(LONG)).await?;
        for key in ["k", "p"] {
            ensure!(
                s.delete_live(key).await?,
                "delete_live of the live key `{key}` returned false"
            );
            expect_gone(&s, key, &format!("after delete_live of `{key}`")).await?;
            ensure!(
                !s.delete_live(key).await?,
                "a second delete_live of `{key}` returned true"
            );
        }
        let got = s.get("other", None).await?;
        ensure!(
            got == Some(bytes("w")),
            "delete_live of one key changed another to {}",
            describe(&got)
        );
        Ok(())
    }

    pub(super) async fn delete_live_of_missing_key_is_false<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        ensure!(
            !s.delete_live("missing").await?,
            "delete_live of a missing key returned true"
        );
        s.set("k", bytes("v"), Some(LONG)).await?;
        s.delete("k").await?;
        ensure!(
            !s.delete_live("k").await?,
            "delete_live of a missing key returned true (deleted before)"
        );
        expect_gone(&s, "k", "after delete_live of a missing key").await
    }

    pub(super) async fn delete_live_of_expired_key_is_false<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        s.set("k", bytes("v"), Some(SHORT)).await?;
        s.set("live", bytes("v"), Some(LONG)).await?;
        wait_past_expiry(Instant::now(), SHORT).await;
        ensure!(
            !s.delete_live("k").await?,
            "delete_live of an expired key returned true"
        );
        expect_gone(&s, "k", "after delete_live of an expired key").await?;
        ensure!(
            s.exists("live").await?,
            "delete_live of an expired key removed a live one"
        );
        Ok(())
    }

    async fn every_op_rejects<S: Store>(s: &S, key: &str) -> CaseResult {
        expect_invalid_key(s.get(key, None).await, "get")?;
        expect_invalid_key(s.get(key, Some(LONG)).await, "renewing get")?;
        expect_invalid_key(s.set(key, bytes("v"), None).await, "set")?;
        expect_invalid_key(s.delete(key).await, "delete")?;
        expect_invalid_key(s.exists(key).await, "exists")?;
        expect_invalid_key(s.expires_in(key).await, "expires_in")?;
        expect_invalid_key(s.create(key, bytes("v"), None).await, "create")?;
        expect_invalid_key(s.update(key, bytes("v"), None).await, "update")?;
        expect_invalid_key(
            s.compare_and_set(key, bytes("v"), bytes("w"), None).await,
            "compare_and_set",
        )?;
        expect_invalid_key(s.delete_live(key).await, "delete_live")?;
        Ok(())
    }

    pub(super) async fn empty_key_is_rejected<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        every_op_rejects(&s, "").await
    }

    pub(super) async fn key_of_255_bytes_is_accepted<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        let ascii = "k".repeat(255);
        round_trip(&s, &ascii, bytes("ascii")).await?;
        // 127 two-byte characters and one ASCII byte: 128 characters, 255 bytes.
        let wide = format!("{}k", "é".repeat(127));
        round_trip(&s, &wide, bytes("wide")).await?;
        let got = s.get(&ascii, None).await?;
        ensure!(
            got == Some(bytes("ascii")),
            "two 255-byte keys collided: {}",
            describe(&got)
        );
        Ok(())
    }

    pub(super) async fn key_of_256_bytes_is_rejected<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        every_op_rejects(&s, &"k".repeat(256)).await?;
        // 128 characters, 256 bytes: the limit is in bytes.
        every_op_rejects(&s, &"é".repeat(128)).await
    }

    pub(super) async fn key_with_nul_is_rejected<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        every_op_rejects(&s, "a\0b").await
    }

    pub(super) async fn non_ascii_key_round_trips<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        for (i, key) in ["ключ", "鍵-🔑", "ǅ\u{301}e", "'; DROP TABLE x; --"]
            .iter()
            .enumerate()
        {
            round_trip(&s, key, Bytes::from(format!("value {i}"))).await?;
        }
        let got = s.get("ключ", None).await?;
        ensure!(
            got == Some(bytes("value 0")),
            "non-ASCII keys collided: {}",
            describe(&got)
        );
        Ok(())
    }

    pub(super) async fn keys_differing_in_letter_case_stay_distinct<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        let s = f.new_store().await?;
        keys_stay_distinct(
            &s,
            "keys that differ only in letter case",
            &[
                "session", "Session", "SESSION", "sEsSiOn", "ключ", "КЛЮЧ", "éa", "Éa", "ǆ", "ǅ",
                "Ǆ", "ß", "ẞ", "SS",
            ],
        )
        .await
    }

    pub(super) async fn keys_differing_in_surrounding_whitespace_stay_distinct<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        let s = f.new_store().await?;
        keys_stay_distinct(
            &s,
            "keys that differ only in leading or trailing whitespace",
            &[
                "k",
                " k",
                "k ",
                " k ",
                "k  ",
                "  k",
                "\tk",
                "k\t",
                "k\n",
                "\r\nk",
                "k\u{a0}",
                "\u{3000}k",
                " ",
                "  ",
            ],
        )
        .await
    }

    pub(super) async fn keys_differing_in_one_non_ascii_character_stay_distinct<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        let s = f.new_store().await?;
        keys_stay_distinct(
            &s,
            "keys that differ in one non-ASCII character",
            &[
                "cafe",
                "café",
                "cafè",
                "cafe\u{301}",
                "caf?",
                "caf\u{fffd}",
                "caf\u{1f600}",
                "caf\u{1f601}",
                "\u{ff43}afe",
                "\u{441}afe",
                "strasse",
                "straße",
                "鍵",
                "鑰",
            ],
        )
        .await
    }

    pub(super) async fn keys_differing_after_a_long_shared_prefix_stay_distinct<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        let s = f.new_store().await?;
        let p = |n: usize| "p".repeat(n);
        let wide = "é".repeat(100); // 200 bytes, 100 characters
        let keys = [
            p(200),
            format!("{}a", p(200)),
            format!("{}b", p(200)),
            format!("{}x", p(250)),
            format!("{}y", p(250)),
            format!("{}a", p(254)), // 255 bytes, differing in the last
            format!("{}b", p(254)),
            format!("{}é", p(253)), // 255 bytes, differing in the last character
            format!("{}è", p(253)),
            format!("{wide}x"),
            format!("{wide}y"),
            format!("{wide}{}", "z".repeat(55)),
        ];
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        keys_stay_distinct(
            &s,
            "keys that differ only after a shared prefix of 200 bytes or more",
            &keys,
        )
        .await
    }

    pub(super) async fn empty_value_round_trips<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        round_trip(&s, "k", Bytes::new()).await?;
        ensure!(
            s.exists("k").await?,
            "a key with the empty value does not exist"
        );
        Ok(())
    }

    pub(super) async fn value_with_nul_bytes_round_trips<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        round_trip(&s, "k", Bytes::from_static(b"\0a\0\0b\0\xff\xfe\0")).await
    }

    pub(super) async fn value_of_32k_minus_1_round_trips<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        round_trip(&s, "k", patterned(32 * 1024 - 1, 1)).await
    }

    pub(super) async fn value_of_32k_plus_1_round_trips<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        round_trip(&s, "k", patterned(32 * 1024 + 1, 2)).await
    }

    pub(super) async fn value_of_1mib_round_trips<F: StoreFactory>(f: &F) -> CaseResult {
        let s = f.new_store().await?;
        round_trip(&s, "k", patterned(1024 * 1024, 3)).await
    }

    /// Spawns `n` tasks that start `op(i)` together, released by one
    /// barrier, and collects what they returned.
    async fn together<S, T, Fut>(
        s: &Arc<S>,
        n: usize,
        op: impl Fn(Arc<S>, usize) -> Fut,
    ) -> Result<Vec<T>, CaseError>
    where
        S: Store + 'static,
        T: Send + 'static,
        Fut: Future<Output = session_core::Result<T>> + Send + 'static,
    {
        let start = Arc::new(tokio::sync::Barrier::new(n));
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let start = start.clone();
                let op = op(s.clone(), i);
                tokio::spawn(async move {
                    start.wait().await;
                    op.await
                })
            })
            .collect();
        let mut results = Vec::with_capacity(n);
        for (i, task) in tasks.into_iter().enumerate() {
            match task.await {
                Ok(result) => results.push(result?),
                Err(e) => return Err(CaseError::Failed(format!("task {i} of {n} panicked: {e}"))),
            }
        }
        Ok(results)
    }

    /// The one task of `wrote` whose call returned true; `calls` names the
    /// calls in the failure, e.g. ``creates of `k0` ``.
    fn one_winner(wrote: &[bool], calls: &str) -> Result<usize, CaseError> {
        let winners: Vec<usize> = (0..wrote.len()).filter(|&i| wrote[i]).collect();
        ensure!(
            winners.len() <= 1,
            "{} of {} concurrent {calls} returned true (more than one winner)",
            winners.len(),
            wrote.len()
        );
        ensure!(
            winners.len() == 1,
            "none of {} concurrent {calls} returned true (no winner)",
            wrote.len()
        );
        Ok(winners[0])
    }

    /// `key` holds `v{winner}`, the value the winning task wrote.
    async fn holds_the_winners_value<S: Store>(
        s: &S,
        key: &str,
        winner: usize,
        what: &str,
    ) -> CaseResult {
        let got = s.get(key, None).await?;
        ensure!(
            got == Some(Bytes::from(format!("v{winner}"))),
            "the winning {what} of `{key}` wrote v{winner} but the key holds {}",
            describe(&got)
        );
        Ok(())
    }

    pub(super) async fn concurrent_writes_to_one_key_leave_one_whole_value<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        let s = Arc::new(f.new_store().await?);
        // Every value has a length and bytes of its own: a value torn
        // between two writers matches none.
        let value = |i: usize| Bytes::from(vec![i as u8; 4096 + i]);
        together(&s, 64, move |s, i| async move {
            s.set("k", value(i), Some(LONG)).await
        })
        .await?;
        let got = s.get("k", None).await?;
        ensure!(
            got.as_ref()
                .is_some_and(|g| (0..64).any(|i| *g == value(i))),
            "after 64 concurrent writes the value is {}, none of the written ones",
            describe(&got)
        );
        Ok(())
    }

    pub(super) async fn concurrent_writes_to_distinct_keys_lose_none<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        let s = Arc::new(f.new_store().await?);
        together(&s, 64, |s, i| async move {
            s.set(&format!("k{i}"), Bytes::from(format!("v{i}")), Some(LONG))
                .await
        })
        .await?;
        for i in 0..64 {
            let got = s.get(&format!("k{i}"), None).await?;
            ensure!(
                got == Some(Bytes::from(format!("v{i}"))),
                "after 64 concurrent writers, key k{i} holds {}",
                describe(&got)
            );
        }
        Ok(())
    }

    pub(super) async fn concurrent_creates_of_one_key_have_one_winner<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        let s = Arc::new(f.new_store().await?);
        // Several rounds, each on a key of its own: a race that one round
        // happens to miss, another catches.
        for round in 0..8 {
            let key = format!("k{round}");
            let wrote = together(&s, 16, |s, i| {
                let key = key.clone();
                async move {
                    s.create(&key, Bytes::from(format!("v{i}")), Some(LONG))
                        .await
                }
            })
            .await?;
            let winner = one_winner(&wrote, &format!("creates of `{key}`"))?;
            holds_the_winners_value(&*s, &key, winner, "create").await?;
        }
        Ok(())
    }

    pub(super) async fn concurrent_compare_and_sets_of_one_key_have_one_winner<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        let s = Arc::new(f.new_store().await?);
        // As for `create`: several rounds, each on a key of its own, every
        // task swapping from the value all of them loaded.
        for round in 0..8 {
            let key = format!("k{round}");
            let loaded = Bytes::from(format!("loaded {round}"));
            s.set(&key, loaded.clone(), Some(LONG)).await?;
            let wrote = together(&s, 16, |s, i| {
                let (key, loaded) = (key.clone(), loaded.clone());
                async move {
                    s.compare_and_set(&key, loaded, Bytes::from(format!("v{i}")), Some(LONG))
                        .await
                }
            })
            .await?;
            let calls = format!("compare_and_sets of `{key}` from the same value");
            let winner = one_winner(&wrote, &calls)?;
            holds_the_winners_value(&*s, &key, winner, "compare_and_set").await?;
        }
        Ok(())
    }

    pub(super) async fn concurrent_delete_lives_of_one_key_have_one_winner<F: StoreFactory>(
        f: &F,
    ) -> CaseResult {
        let s = Arc::new(f.new_store().await?);
        for round in 0..8 {
            let key = format!("k{round}");
            // Half the rounds on a key without expiry.
            let expires_in = if round % 2 == 0 { Some(LONG) } else { None };
            s.set(&key, bytes("v"), expires_in).await?;
            let removed = together(&s, 16, |s, _| {
                let key = key.clone();
                async move { s.delete_live(&key).await }
            })
            .await?;
            one_winner(&removed, &format!("delete_lives of `{key}`"))?;
            expect_gone(
                &s,
                &key,
                &format!("after concurrent delete_lives of `{key}`"),
            )
            .await?;
        }
        Ok(())
    }

    /// The one case that needs two stores from one factory.
    pub(super) async fn delete_all_spares_other_stores<F: StoreFactory>(factory: &F) -> CaseResult {
        let a = factory.new_store().await?;
        let b = factory.new_store().await?;
        a.set("shared-name", bytes("a"), None).await?;
        b.set("shared-name", bytes("b"), None).await?;
        b.set("only-b", bytes("b"), Some(LONG)).await?;
        a.delete_all().await?;
        let got = b.get("shared-name", None).await?;
        ensure!(
            got == Some(bytes("b")),
            "delete_all on one store changed another store's key to {}",
            describe(&got)
        );
        ensure!(
            b.exists("only-b").await?,
            "delete_all on one store removed another store's key"
        );
        let got = a.get("shared-name", None).await?;
        ensure!(got.is_none(), "delete_all left {} behind", describe(&got));
        Ok(())
    }
}

type BoxFuture<'a> = Pin<Box<dyn Future<Output = CaseResult> + Send + 'a>>;

macro_rules! cases {
    (; $($name:ident),* $(,)?) => {
        /// The name of every case, in the order the suite runs them.
        pub const CASE_NAMES: &[&str] = &[$(stringify!($name)),*];

        pub(crate) async fn run<F: StoreFactory>(name: &str, factory: &F) -> CaseResult {
            let case: BoxFuture<'_> = match name {
                $(stringify!($name) => Box::pin(list::$name(factory)),)*
                other => panic!("no conformance case is called `{other}`; see CASE_NAMES"),
            };
            case.await
        }
    };
}

crate::__with_case_names! { [cases] [] }
