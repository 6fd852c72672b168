//! What the benchmarks share: medians, a key sequence both sides of a
//! comparison draw alike, and the figures' formats in
//! `docs/performance.md`.

use std::time::Duration;

/// The median of `values` (the mean of the middle two for an even count;
/// NaN for none).
///
/// ```
/// use session_test_support::bench::median;
/// assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
/// assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
/// ```
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The `pct`th percentile of `sorted` (sorted ascending).
///
/// # Panics
///
/// When `sorted` is empty.
pub fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    sorted[(sorted.len() * pct / 100).min(sorted.len() - 1)]
}

/// A small xorshift generator: the same sequence of keys for both sides of
/// a comparison, without a dependency.
///
/// ```
/// use session_test_support::bench::next;
/// let (mut a, mut b) = (7, 7);
/// assert_eq!(next(&mut a), next(&mut b));
/// ```
pub fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Operations per second, rounded, with thousands separators: `12,345`.
///
/// ```
/// assert_eq!(session_test_support::bench::fmt_rate(12_345.4), "12,345");
/// ```
pub fn fmt_rate(x: f64) -> String {
    fmt_count(x.round() as u64)
}

/// A count with thousands separators: `10,000,000`.
///
/// ```
/// use session_test_support::bench::fmt_count;
/// assert_eq!(fmt_count(10_000_000), "10,000,000");
/// assert_eq!(fmt_count(999), "999");
/// ```
pub fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency in milliseconds: two decimals below 10 ms, none above.
///
/// ```
/// use std::time::Duration;
/// use session_test_support::bench::fmt_latency;
/// assert_eq!(fmt_latency(Duration::from_micros(1_250)), "1.25 ms");
/// assert_eq!(fmt_latency(Duration::from_millis(42)), "42 ms");
/// ```
pub fn fmt_latency(d: Duration) -> String {
    if d >= Duration::from_millis(10) {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

/// What one run of [`run_tasks`] measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Operations per second over the whole run (all tasks).
    pub ops_per_sec: f64,
    /// The median latency of one operation.
    pub p50: Duration,
    /// The 99th percentile of one operation's latency.
    pub p99: Duration,
}

/// Runs `per_task` operations on each of `tasks` tokio tasks and measures
/// them: `op(task, i, random)` makes the `i`-th operation of task `task`
/// (`random` from [`next`], seeded per task, so both sides of a comparison
/// draw the same keys); only awaiting the future it returns is timed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use session_test_support::bench::run_tasks;
/// let measured = run_tasks(4, 100, |_task, _i, _random| async {}).await;
/// assert!(measured.ops_per_sec > 0.0);
/// # }
/// ```
///
/// # Panics
///
/// When an operation panics (its task's panic is passed on).
pub async fn run_tasks<F, Fut>(tasks: usize, per_task: usize, op: F) -> Measured
where
    F: Fn(usize, usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = std::time::Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ (task as u64 + 1);
                let mut latencies = Vec::with_capacity(per_task);
                for i in 0..per_task {
                    let operation = op(task, i, next(&mut seed));
                    let t0 = std::time::Instant::now();
                    operation.await;
                    latencies.push(t0.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::with_capacity(tasks * per_task);
    for handle in handles {
        match handle.await {
            Ok(latencies) => all.extend(latencies),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    Measured {
        ops_per_sec: all.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&all, 50),
        p99: percentile(&all, 99),
    }
}

/// One Markdown row `| case | tasks | store ops/s | store p99 | raw ops/s |
/// raw p99 | store/raw |` of a comparison: the medians of each side's
/// rounds, and the median of the rounds' ratios (round `i` of both sides
/// ran back to back, so each ratio compares like with like).
///
/// ```
/// use std::time::Duration;
/// use session_test_support::bench::{Measured, comparison_row};
/// let p = Duration::from_micros(150);
/// let m = |ops_per_sec| Measured { ops_per_sec, p50: p, p99: p };
/// let row = comparison_row("read", 16, &[m(900.0), m(1_100.0)], &[m(1_000.0), m(1_000.0)]);
/// assert_eq!(row, "| read | 16 | 1,000 | 0.15 ms | 1,000 | 0.15 ms | 1.00 |");
/// ```
pub fn comparison_row(case: &str, tasks: usize, store: &[Measured], raw: &[Measured]) -> String {
    table_row(case, tasks, store, raw, false)
}

/// `| case | tasks | store ops/s | p50 | p99 | raw ops/s | p50 | p99 |
/// store/raw |`: like [`comparison_row`], with each side's median p50
/// beside its p99.
///
/// ```
/// use std::time::Duration;
/// use session_test_support::bench::{Measured, comparison_row_with_p50};
/// let m = |ops_per_sec, p50, p99| Measured {
///     ops_per_sec,
///     p50: Duration::from_micros(p50),
///     p99: Duration::from_micros(p99),
/// };
/// let row = comparison_row_with_p50("read", 1, &[m(2_000.0, 40, 90)], &[m(1_000.0, 50, 100)]);
/// assert_eq!(row, "| read | 1 | 2,000 | 0.04 ms | 0.09 ms | 1,000 | 0.05 ms | 0.10 ms | 2.00 |");
/// ```
pub fn comparison_row_with_p50(
    case: &str,
    tasks: usize,
    store: &[Measured],
    raw: &[Measured],
) -> String {
    table_row(case, tasks, store, raw, true)
}

/// The row of [`comparison_row`] (`with_p50`: of
/// [`comparison_row_with_p50`]): each side's median rate, p50 when asked,
/// and p99, then the median of the rounds' ratios.
fn table_row(
    case: &str,
    tasks: usize,
    store: &[Measured],
    raw: &[Measured],
    with_p50: bool,
) -> String {
    let latency = |side: &[Measured], pick: fn(&Measured) -> Duration| {
        fmt_latency(Duration::from_secs_f64(median(
            side.iter().map(|m| pick(m).as_secs_f64()),
        )))
    };
    let mut row = format!("| {case} | {tasks} |");
    for side in [store, raw] {
        row += &format!(
            " {} |",
            fmt_rate(median(side.iter().map(|m| m.ops_per_sec)))
        );
        if with_p50 {
            row += &format!(" {} |", latency(side, |m| m.p50));
        }
        row += &format!(" {} |", latency(side, |m| m.p99));
    }
    let ratio = median(
        store
            .iter()
            .zip(raw)
            .map(|(s, r)| s.ops_per_sec / r.ops_per_sec),
    );
    row + &format!(" {ratio:.2} |")
}
