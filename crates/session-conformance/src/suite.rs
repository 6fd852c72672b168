//! Running the cases together: at most [`ACTIVE_CASES`] at work at once,
//! any number waiting for an expiry.
//!
//! The cases that check expiry spend most of their time asleep, waiting for
//! real time to pass. They hold a slot only until they first sleep, so their
//! waits overlap while the cases doing work stay few (a database store opens
//! up to a pool's worth of connections per case).

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{CASE_NAMES, CaseOutcome, Outcome, StoreFactory, run_case};

/// How many cases do work at once; a case asleep until an expiry does not
/// count.
pub(crate) const ACTIVE_CASES: usize = 2;

tokio::task_local! {
    /// The slot the running case holds, until it first sleeps.
    static SLOT: RefCell<Option<OwnedSemaphorePermit>>;
}

/// Runs `case` once one of `slots` is free; the case gives its slot back
/// when it first waits for an expiry ([`release_slot`]) or when it ends.
pub(crate) async fn gated<T>(slots: &Arc<Semaphore>, case: impl Future<Output = T>) -> T {
    // The semaphore is never closed; were it, the case would run ungated.
    let permit = slots.clone().acquire_owned().await.ok();
    SLOT.scope(RefCell::new(permit), case).await
}

/// Gives the running case's slot back: it is about to sleep until an
/// expiry. Outside [`gated`] it does nothing.
pub(crate) fn release_slot() {
    let _ = SLOT.try_with(|slot| slot.borrow_mut().take());
}

/// One [`store_conformance!`](crate::store_conformance) invocation's run of
/// every case, shared by its tests.
///
/// The first of its tests to run starts every case on a runtime of its own
/// (each case with a factory of its own, from `make`) and every test waits
/// for the whole run, then reports its own case. So the expiry waits
/// overlap however many threads the test harness has, and no case is left
/// running (holding tables, say) when the harness exits after a filtered
/// run. Under `cargo nextest`, which runs each test in a process of its
/// own, each test runs just its own case.
#[doc(hidden)]
pub struct Suite {
    started: Once,
    finished: Mutex<Option<Result<Vec<CaseOutcome>, String>>>,
    done: Condvar,
}

impl Default for Suite {
    fn default() -> Self {
        Self::new()
    }
}

impl Suite {
    /// A suite that has not run yet.
    pub const fn new() -> Self {
        Suite {
            started: Once::new(),
            finished: Mutex::new(None),
            done: Condvar::new(),
        }
    }

    /// Runs the suite if no test of it has yet, waits for it to finish, and
    /// panics with the failure of the case called `name`, if it failed.
    pub fn run_case<F: StoreFactory + 'static>(&'static self, name: &str, make: fn() -> F) {
        if std::env::var_os("NEXTEST").is_some() {
            return crate::__run_case_blocking(name, make());
        }
        self.started.call_once(|| self.start(make));
        let outcome = {
            let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
            while finished.is_none() {
                finished = self.done.wait(finished).unwrap_or_else(|p| p.into_inner());
            }
            match finished.as_ref() {
                Some(Ok(outcomes)) => outcomes
                    .iter()
                    .find(|o| o.name == name)
                    .map(|o| o.outcome.clone()),
                Some(Err(why)) => Some(Outcome::Failed(why.clone())),
                None => None,
            }
        };
        match outcome {
            Some(Outcome::Passed) => {}
            Some(Outcome::Skipped(why)) => crate::report_skip(&why),
            Some(Outcome::Failed(why)) => panic!("conformance case `{name}` failed: {why}"),
            None => panic!("no conformance case is called `{name}`; see CASE_NAMES"),
        }
    }

    fn start<F: StoreFactory + 'static>(&'static self, make: fn() -> F) {
        let spawned = std::thread::Builder::new()
            .name("session-conformance".into())
            .spawn(move || {
                // Should the runner itself panic, the tests fail instead of
                // waiting forever.
                let _finish = FinishOnDrop(self);
                let result = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(4)
                    .enable_all()
                    .build()
                    .map_err(|e| format!("the conformance suite could not start a runtime: {e}"))
                    .map(|runtime| runtime.block_on(run_isolated(make)));
                self.finish(result);
            });
        if let Err(e) = spawned {
            self.finish(Err(format!(
                "the conformance suite could not start its thread: {e}"
            )));
        }
    }

    fn finish(&self, result: Result<Vec<CaseOutcome>, String>) {
        let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        if finished.is_none() {
            *finished = Some(result);
        }
        self.done.notify_all();
    }
}

struct FinishOnDrop(&'static Suite);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        self.0
            .finish(Err("the conformance suite's runner panicked".into()));
    }
}

/// Every case, each as a task of its own (a panicking store fails its case,
/// not the run) with a factory of its own, dropped off the runtime's workers
/// (a factory's `Drop` may block, dropping its tables).
async fn run_isolated<F: StoreFactory + 'static>(make: fn() -> F) -> Vec<CaseOutcome> {
    let slots = Arc::new(Semaphore::new(ACTIVE_CASES));
    let tasks: Vec<_> = CASE_NAMES
        .iter()
        .map(|&name| {
            let slots = slots.clone();
            tokio::spawn(async move {
                let factory = make();
                let outcome = gated(&slots, run_case(name, &factory)).await;
                let _ = tokio::task::spawn_blocking(move || drop(factory)).await;
                outcome
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for (&name, task) in CASE_NAMES.iter().zip(tasks) {
        outcomes.push(task.await.unwrap_or_else(|e| CaseOutcome {
            name,
            outcome: Outcome::Failed(panic_message(e)),
            elapsed: Duration::ZERO,
        }));
    }
    outcomes
}

fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => {
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text payload".to_owned());
            format!("the case panicked: {text}")
        }
        Err(error) => format!("the case was cancelled: {error}"),
    }
}
