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

/// When a read ran, relative to a piece of work measured beside it (see
/// [`reads_around`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// In the window before the work started.
    Before,
    /// While the work ran.
    During,
    /// In the window after the work ended.
    After,
}

const DONE: u8 = 3;

/// Runs `tasks` readers without a break between windows: for `window`
/// before `work`, while it runs, and for `window` after it; returns each
/// read's [`Phase`] (the phase it started in) and latency, and `work`'s
/// output. Each reader calls `read(task, random)` (`random` from [`next`],
/// seeded per task) back to back, or at most once per `every`; only
/// awaiting the future it returns is timed. The reads before and after are
/// the reads without the work, so a change of the machine's load during
/// the round weighs on both sides of a comparison.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use session_test_support::bench::{Phase, reads_around};
/// let window = Duration::from_millis(20);
/// let (reads, out) = reads_around(2, None, window, |_task, _random| async {
///     tokio::time::sleep(Duration::from_millis(1)).await
/// }, async { tokio::time::sleep(window).await; 7 }).await;
/// assert_eq!(out, 7);
/// for phase in [Phase::Before, Phase::During, Phase::After] {
///     assert!(reads.iter().any(|(at, _)| *at == phase));
/// }
/// # }
/// ```
///
/// # Panics
///
/// When a read panics (its task's panic is passed on).
pub async fn reads_around<R, Fut, W, T>(
    tasks: usize,
    every: Option<Duration>,
    window: Duration,
    read: R,
    work: W,
) -> (Vec<(Phase, Duration)>, T)
where
    R: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
    W: std::future::Future<Output = T>,
{
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};
    let phase = Arc::new(AtomicU8::new(Phase::Before as u8));
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (read, phase) = (read.clone(), phase.clone());
            tokio::spawn(async move {
                let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ (task as u64 + 1);
                let mut ticks = every.map(|every| {
                    let mut ticks = tokio::time::interval(every);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    ticks
                });
                let mut latencies = Vec::new();
                loop {
                    if let Some(ticks) = ticks.as_mut() {
                        ticks.tick().await;
                    }
                    let at = match phase.load(Ordering::Relaxed) {
                        0 => Phase::Before,
                        1 => Phase::During,
                        2 => Phase::After,
                        _ => break,
                    };
                    let operation = read(task, next(&mut seed));
                    let t0 = std::time::Instant::now();
                    operation.await;
                    latencies.push((at, t0.elapsed()));
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(window).await;
    phase.store(Phase::During as u8, Ordering::Relaxed);
    let out = work.await;
    phase.store(Phase::After as u8, Ordering::Relaxed);
    tokio::time::sleep(window).await;
    phase.store(DONE, Ordering::Relaxed);
    let mut all = Vec::new();
    for handle in handles {
        match handle.await {
            Ok(latencies) => all.extend(latencies),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    (all, out)
}

/// The latencies of [`reads_around`] one side's work, pooled over rounds:
/// a round's p99 rests on its few slowest reads (with 500 reads, the 5th
/// slowest), so one stall of the machine moves it by a factor of several;
/// the p99 of all rounds' reads together rests on many more.
///
/// ```
/// use std::time::Duration;
/// use session_test_support::bench::{Phase, ReadsAround};
/// let ms = Duration::from_millis;
/// let mut reads = ReadsAround::default();
/// reads.add_round(&[(Phase::Before, ms(1)), (Phase::During, ms(3)), (Phase::After, ms(1))]);
/// reads.add_round(&[(Phase::Before, ms(2)), (Phase::During, ms(2)), (Phase::After, ms(1))]);
/// assert_eq!(reads.without(99), ms(2));
/// assert_eq!(reads.during(99), ms(3));
/// assert_eq!(reads.p99_ratio(), 1.5);
/// assert_eq!(reads.round_ratios(), (1.0, 3.0));
/// ```
#[derive(Debug, Default, Clone)]
pub struct ReadsAround {
    without: Vec<Duration>,
    during: Vec<Duration>,
    round_ratios: Vec<f64>,
}

impl ReadsAround {
    /// Adds one round's reads.
    pub fn add_round(&mut self, reads: &[(Phase, Duration)]) {
        let mut without: Vec<Duration> = reads
            .iter()
            .filter(|(at, _)| *at != Phase::During)
            .map(|(_, d)| *d)
            .collect();
        let mut during: Vec<Duration> = reads
            .iter()
            .filter(|(at, _)| *at == Phase::During)
            .map(|(_, d)| *d)
            .collect();
        without.sort_unstable();
        during.sort_unstable();
        if !without.is_empty() && !during.is_empty() {
            self.round_ratios.push(
                percentile(&during, 99).as_secs_f64() / percentile(&without, 99).as_secs_f64(),
            );
        }
        self.without.extend(without);
        self.during.extend(during);
    }

    /// The `pct` percentile of all rounds' reads without the work.
    ///
    /// # Panics
    ///
    /// Before any round added reads without the work.
    pub fn without(&self, pct: usize) -> Duration {
        sorted_percentile(&self.without, pct)
    }

    /// The `pct` percentile of all rounds' reads during the work.
    ///
    /// # Panics
    ///
    /// Before any round added reads during the work.
    pub fn during(&self, pct: usize) -> Duration {
        sorted_percentile(&self.during, pct)
    }

    /// The p99 of the reads during the work over their p99 without it,
    /// all rounds pooled.
    pub fn p99_ratio(&self) -> f64 {
        self.during(99).as_secs_f64() / self.without(99).as_secs_f64()
    }

    /// The smallest and largest of the rounds' own p99 ratios.
    pub fn round_ratios(&self) -> (f64, f64) {
        self.round_ratios
            .iter()
            .fold((f64::INFINITY, 0.0_f64), |(lo, hi), r| {
                (lo.min(*r), hi.max(*r))
            })
    }

    /// How many reads ran without the work and during it.
    pub fn counts(&self) -> (usize, usize) {
        (self.without.len(), self.during.len())
    }
}

fn sorted_percentile(values: &[Duration], pct: usize) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    percentile(&sorted, pct)
}

/// The operations the backend benches compare store against raw client,
/// in the order of their tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `get` without renewal.
    Read,
    /// `get` with a renewal.
    RenewingRead,
    /// `set`.
    Write,
    /// `compare_and_set`.
    CompareAndSet,
    /// `create`.
    Create,
    /// `delete`.
    Delete,
}

impl Op {
    /// Every operation, in table order.
    pub const ALL: [Op; 6] = [
        Op::Read,
        Op::RenewingRead,
        Op::Write,
        Op::CompareAndSet,
        Op::Create,
        Op::Delete,
    ];

    /// The name a table row shows.
    ///
    /// ```
    /// use session_test_support::bench::Op;
    /// assert_eq!(Op::CompareAndSet.name(), "compare-and-set");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::RenewingRead => "renewing read",
            Op::Write => "write",
            Op::CompareAndSet => "compare-and-set",
            Op::Create => "create",
            Op::Delete => "delete",
        }
    }

    /// A short name, for picking cases from the command line.
    ///
    /// ```
    /// use session_test_support::bench::Op;
    /// assert_eq!(Op::RenewingRead.short(), "renew");
    /// ```
    pub fn short(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::RenewingRead => "renew",
            Op::Write => "set",
            Op::CompareAndSet => "cas",
            Op::Create => "create",
            Op::Delete => "delete",
        }
    }
}
