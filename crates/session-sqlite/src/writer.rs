//! The single writer of a file database: one connection on a thread of its
//! own that runs every write of the store, in arrival order.
//!
//! SQLite has one write lock per database. When the pooled connections of
//! one process compete for it, each loser sleeps in SQLite's busy handler
//! (1, 2, 5, 10, 15, 20, 25 ms ... between tries) however soon the lock is
//! free again: at 16 tasks, one write in ten slept and the p99 of every
//! writing operation was the sum of those sleeps (9-22 ms). Here writes
//! queue in the process instead, and never meet the busy handler unless
//! another process (or a statement of the application's own on the pool)
//! holds the lock.
//!
//! Writes that queued while the writer was busy are committed together: one
//! `BEGIN IMMEDIATE`, each write in order, one `COMMIT`, so concurrent
//! writes share one commit (and its WAL frames) without waiting for each
//! other longer than the writer is busy anyway; a lone write is one
//! statement in its own transaction, as before. Each caller gets its
//! write's own outcome after the commit. If a write of a group fails (or
//! the commit does), the group is rolled back and every write of it runs
//! again alone, so no write's outcome depends on its neighbours; if the
//! group cannot take the write lock within the busy timeout, each of its
//! writes fails with that "database is locked" error (and so do the writes
//! of a group run one by one after the first of them that does).
//!
//! Bounds: at most [`QUEUE`] writes wait in the queue; a caller waits at
//! most the store's `wait_timeout` for the writer to take its write (for
//! room in the queue, then for its turn), as a read waits for a pooled
//! connection, and then fails with [`Error::PoolTimeout`] giving the time
//! it waited; the write is then never run. A write the writer took runs to
//! its end, which SQLite's busy timeout bounds when another connection
//! holds the lock: a caller waits at most about `wait_timeout +
//! busy_timeout`. A write whose caller has gone (its future dropped) before
//! the writer takes it is not run. Before a write runs alone, the writer
//! checks that its connection is outside any transaction (a failed
//! `ROLLBACK` would leave it inside, and later writes would never commit):
//! if not, it rolls back again, and failing that fails the write and
//! reopens its connection. A write that panics gets an error saying so;
//! the writer goes on.
//!
//! Checkpoints (copying the WAL back into the database file, with its
//! fsyncs) run on a second thread and connection of their own: SQLite's
//! automatic checkpoint would run them on the committing connection, that
//! is inside the writer's queue, stalling every queued write. The writer
//! learns the WAL's size from SQLite's WAL hook after each commit and asks
//! for a `PASSIVE` checkpoint (which never blocks the writer or readers)
//! at the same 1,000 pages as SQLite's own automatic one.

use std::cell::Cell;
use std::ffi::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};
use session_core::{Error, Result};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, Span};

use crate::config::{file_flags, init_connection};
use crate::store::{BACKEND, Shared};

/// Writes committed together at most.
const MAX_GROUP: usize = 64;

/// Writes queued for the writer at most: two groups. A caller finding the
/// queue full waits for room (within its `wait_timeout`); a longer queue
/// would only move that wait into the queue.
const QUEUE: usize = 2 * MAX_GROUP;

/// WAL pages after which the writer asks for a checkpoint: SQLite's
/// default `wal_autocheckpoint`.
const CHECKPOINT_PAGES: c_int = 1000;

/// A queued write's state: waiting in the queue, taken by the writer, or
/// given up by its caller (its `wait_timeout` passed first). Whichever of
/// the writer and the caller moves it out of `QUEUED` first decides
/// whether the write runs.
const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const GAVE_UP: u8 = 2;

thread_local! {
    /// The WAL's size in pages after the writer thread's last commit, as
    /// SQLite's WAL hook reported it.
    static WAL_PAGES: Cell<c_int> = const { Cell::new(0) };
}

#[cfg(test)]
thread_local! {
    /// `ROLLBACK`s of the writer thread still to fail, for the tests.
    static FAIL_ROLLBACKS: Cell<u32> = const { Cell::new(0) };
}

/// The writer connection's WAL hook (it replaces the automatic
/// checkpoint): notes the WAL's size for [`Serving::serve`].
fn note_wal_size(_wal: &rusqlite::hooks::Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// How a write ran.
#[derive(Debug)]
pub(crate) enum Ran {
    Done,
    /// It failed; its error is kept for its caller.
    Failed,
    /// It failed waiting for the write lock past the busy timeout (a copy
    /// of SQLite's error).
    Locked(rusqlite::Error),
}

/// One queued write: runs on the writer's connection, then replies.
pub(crate) trait Job: Send {
    /// What the write does, for its error messages ("set a session").
    fn what(&self) -> &'static str;
    /// Takes the write for running: `false` when its caller has gone or
    /// gave up waiting, and the write must not run. Once it returned
    /// `true`, the caller waits for the answer.
    fn claim(&mut self) -> bool;
    /// Runs the write (a panic is caught and becomes its error).
    fn run(&mut self, shared: &Shared, conn: &mut Connection) -> Ran;
    /// Sends the outcome of the last run to the caller.
    fn reply(self: Box<Self>);
    /// Sends `error` to the caller instead of running the write.
    fn fail(self: Box<Self>, error: Error);
}

/// A write and the channel its caller waits on.
struct Task<T, F> {
    work: F,
    what: &'static str,
    span: Span,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
    /// [`QUEUED`], [`STARTED`] or [`GAVE_UP`], shared with the caller.
    state: Arc<AtomicU8>,
}

impl<T, F> Job for Task<T, F>
where
    T: Send,
    F: FnMut(&Shared, &mut Connection) -> Result<T> + Send,
{
    fn what(&self) -> &'static str {
        self.what
    }

    fn claim(&mut self) -> bool {
        if self.reply.is_closed() {
            // The caller's future was dropped: nobody wants this write.
            return false;
        }
        match self
            .state
            .compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(STARTED) => true,
            Err(_) => false,
        }
    }

    fn run(&mut self, shared: &Shared, conn: &mut Connection) -> Ran {
        let _entered = self.span.enter();
        let work = &mut self.work;
        let outcome = catch_unwind(AssertUnwindSafe(|| work(shared, conn))).unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|m| (*m).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            tracing::error!(table = %shared.table, what = self.what, %message, "a write panicked");
            Err(Error::backend(
                BACKEND,
                format!(
                    "{}: the write panicked in the writer of the database {} (a bug; \
                     the writer goes on with the next writes)",
                    self.what,
                    shared.database()
                ),
                message,
            ))
        });
        let ran = match &outcome {
            Ok(_) => Ran::Done,
            Err(e) => lock_error(e).map_or(Ran::Failed, Ran::Locked),
        };
        self.outcome = Some(outcome);
        ran
    }

    fn reply(self: Box<Self>) {
        if let Some(outcome) = self.outcome {
            // The caller may have gone (its future was dropped): nothing
            // to tell then.
            let _ = self.reply.send(outcome);
        }
    }

    fn fail(self: Box<Self>, error: Error) {
        let _ = self.reply.send(Err(error));
    }
}

/// A copy of the "database is locked" error under `error`, if that is what
/// it is.
fn lock_error(error: &Error) -> Option<rusqlite::Error> {
    let source = std::error::Error::source(error)?.downcast_ref::<rusqlite::Error>()?;
    locked(source)
}

/// A copy of `e` if it is SQLite's "database is locked" (or busy).
fn locked(e: &rusqlite::Error) -> Option<rusqlite::Error> {
    match e {
        rusqlite::Error::SqliteFailure(code, message)
            if matches!(
                code.code,
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked
            ) =>
        {
            Some(rusqlite::Error::SqliteFailure(*code, message.clone()))
        }
        _ => None,
    }
}

/// The handle of the writer thread: the queue into it. The thread ends,
/// closing its connection, when the last handle is dropped and the queue
/// is empty.
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
    database: String,
    wait_timeout: Duration,
}

/// What the writer thread needs to reopen its connection.
pub(crate) struct Reopen {
    /// The database file.
    pub(crate) path: PathBuf,
    /// SQLite's busy timeout of the connection.
    pub(crate) busy_timeout: Duration,
}

impl Writer {
    /// Starts the writer thread on `conn` and the checkpoint thread on
    /// `checkpoints`, two connections to the same file (already
    /// configured: WAL, busy timeout, `synchronous`). A write waits at
    /// most `wait_timeout` for the writer to take it.
    ///
    /// # Errors
    ///
    /// When a thread cannot be started, naming `database`.
    pub(crate) fn start(
        conn: Connection,
        checkpoints: Connection,
        shared: Arc<Shared>,
        reopen: Reopen,
        wait_timeout: Duration,
    ) -> Result<Self> {
        let database = shared.database().to_owned();
        let cannot = |e| {
            Error::connection(
                BACKEND,
                format!("cannot start the writer of the database {database}"),
                e,
            )
        };
        let (kick, kicked) = sync_channel::<()>(1);
        let table = shared.table.to_string();
        std::thread::Builder::new()
            .name("session-sqlite-checkpoint".into())
            .spawn(move || checkpoint(&checkpoints, &kicked, &table))
            .map_err(cannot)?;
        conn.wal_hook(Some(note_wal_size));
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>(QUEUE);
        let mut serving = Serving {
            conn,
            shared,
            reopen,
        };
        std::thread::Builder::new()
            .name("session-sqlite-writer".into())
            .spawn(move || serving.serve(queue, &kick))
            .map_err(cannot)?;
        Ok(Writer {
            jobs,
            database,
            wait_timeout,
        })
    }

    /// Runs `work`, a write, on the writer thread and returns its outcome.
    ///
    /// The caller waits at most `wait_timeout` for the writer to take the
    /// write (for room in the queue, then for its turn); once taken, the
    /// write runs to its end, which SQLite's busy timeout bounds when
    /// another connection holds the lock. A write whose caller gave up (or
    /// dropped this future) before the writer took it never runs.
    ///
    /// # Errors
    ///
    /// The write's own error; [`Error::PoolTimeout`] with the time waited
    /// when the writer did not take the write within `wait_timeout`; an
    /// error naming the database when the writer could not answer.
    pub(crate) async fn write<T, F>(
        &self,
        op: &'static str,
        what: &'static str,
        span: Span,
        work: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Shared, &mut Connection) -> Result<T> + Send + 'static,
    {
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + self.wait_timeout);
        let state = Arc::new(AtomicU8::new(QUEUED));
        let (reply, mut outcome) = oneshot::channel();
        let task = Task {
            work,
            what,
            span: span.clone(),
            outcome: None,
            reply,
            state: Arc::clone(&state),
        };
        let waiting = async {
            match tokio::time::timeout_at(deadline, self.jobs.send(Box::new(task))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(self.ended(op)),
                Err(_) => {
                    return Err(self.timed_out(op, started, "the writer's queue stayed full"));
                }
            }
            if let Ok(answer) = tokio::time::timeout_at(deadline, &mut outcome).await {
                return answer.map_err(|_| self.abandoned(op))?;
            }
            if state
                .compare_exchange(QUEUED, GAVE_UP, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Err(self.timed_out(op, started, "the writer was busy with earlier writes"));
            }
            // The writer took the write in time: it is running, and ends
            // within the busy timeout.
            outcome.await.map_err(|_| self.abandoned(op))?
        };
        waiting.instrument(span).await
    }

    /// The error of a write the writer did not take within `wait_timeout`.
    fn timed_out(&self, op: &str, started: Instant, why: &str) -> Error {
        let waited = started.elapsed();
        tracing::warn!(
            database = %self.database,
            op,
            ?waited,
            wait_timeout = ?self.wait_timeout,
            "{why}: the write was not run"
        );
        Error::PoolTimeout {
            backend: BACKEND,
            waited,
        }
    }

    /// The error of a write queued after the writer thread ended.
    fn ended(&self, op: &str) -> Error {
        Error::backend(
            BACKEND,
            format!(
                "{op}: the writer of the database {} has ended; the write was not run",
                self.database
            ),
            "the writer thread is gone",
        )
    }

    /// The error of a write the writer dropped without an answer.
    fn abandoned(&self, op: &str) -> Error {
        Error::backend(
            BACKEND,
            format!(
                "{op}: the writer of the database {} dropped the write without an answer \
                 after a panic (see the log); the writer goes on with the next writes",
                self.database
            ),
            "no answer from the writer",
        )
    }
}

/// The writer thread's state: its connection, and what reopening it takes.
struct Serving {
    conn: Connection,
    shared: Arc<Shared>,
    reopen: Reopen,
}

impl Serving {
    /// The writer thread: takes the queued writes, as many as are waiting
    /// (up to [`MAX_GROUP`]), and runs them, until every handle is
    /// dropped.
    fn serve(&mut self, mut queue: mpsc::Receiver<Box<dyn Job>>, checkpoint: &SyncSender<()>) {
        let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
        while let Some(first) = queue.blocking_recv() {
            group.push(first);
            while group.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            let ran = catch_unwind(AssertUnwindSafe(|| self.run_group(&mut group)));
            if ran.is_err() {
                // The writer's own code panicked (a write's panic is
                // caught in its run): the callers of the writes not yet
                // answered get the "dropped without an answer" error
                // (their reply channels close); the connection is left
                // outside any transaction and the writer goes on.
                tracing::error!(table = %self.shared.table, "the writer panicked; its group was abandoned");
                group.clear();
                // Checked again before the next write runs.
                let _ = self.outside_transaction();
            }
            if WAL_PAGES.with(Cell::get) >= CHECKPOINT_PAGES {
                // Full: a checkpoint is already asked for.
                let _ = checkpoint.try_send(());
            }
        }
        tracing::debug!(table = %self.shared.table, "the SQLite writer stopped");
    }

    fn run_group(&mut self, group: &mut Vec<Box<dyn Job>>) {
        if group.len() == 1 {
            return self.one_by_one(group);
        }
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            if let Some(busy) = locked(&e) {
                // Another process held the lock past the busy timeout:
                // every write of the group would wait as long again.
                for mut job in group.drain(..) {
                    if job.claim() {
                        let error = copy(&busy);
                        let what = job.what();
                        job.fail(self.shared.db_error(what, error));
                    }
                }
                return;
            }
            return self.one_by_one(group);
        }
        // The lock is ours: the writes whose callers gave up meanwhile are
        // left out.
        group.retain_mut(|job| job.claim());
        let shared = &self.shared;
        let conn = &mut self.conn;
        let all_ran = group
            .iter_mut()
            .all(|job| matches!(job.run(shared, conn), Ran::Done));
        if all_ran && conn.execute_batch("COMMIT").is_ok() {
            tracing::trace!(writes = group.len(), "writes committed together");
            for job in group.drain(..) {
                job.reply();
            }
            return;
        }
        if !conn.is_autocommit() {
            // Checked again (and the connection reopened if it is still
            // inside the transaction) before each write runs alone.
            if let Err(e) = rollback(conn) {
                tracing::warn!(table = %shared.table, error = %e, "ROLLBACK of a group failed");
            }
        }
        self.one_by_one(group);
    }

    /// Runs each write of `group` alone, in its own transaction, as if it
    /// had never been grouped. Once one fails on the lock (held by another
    /// connection past the busy timeout), the rest fail with that error
    /// instead of waiting as long again each.
    fn one_by_one(&mut self, group: &mut Vec<Box<dyn Job>>) {
        let mut busy: Option<rusqlite::Error> = None;
        for mut job in group.drain(..) {
            if !job.claim() {
                continue;
            }
            let what = job.what();
            if let Some(busy) = &busy {
                job.fail(self.shared.db_error(what, copy(busy)));
                continue;
            }
            if let Err(stuck) = self.outside_transaction() {
                job.fail(stuck.error(what, self.shared.database()));
                continue;
            }
            if let Ran::Locked(e) = job.run(&self.shared, &mut self.conn) {
                busy = Some(e);
            }
            job.reply();
        }
    }

    /// Makes sure the connection is outside any transaction, so that a
    /// lone write commits: a connection still inside one (its `ROLLBACK`
    /// failed) is rolled back again, and when that fails too, replaced by
    /// a new connection; then `Err`, for the write that was about to run.
    fn outside_transaction(&mut self) -> std::result::Result<(), Stuck> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        let failed = match rollback(&self.conn) {
            Ok(()) if self.conn.is_autocommit() => {
                tracing::warn!(database = %self.shared.database(), "the writer's connection was left inside a transaction; rolled back");
                return Ok(());
            }
            Ok(()) => "ROLLBACK left the connection inside the transaction".to_owned(),
            Err(e) => e.to_string(),
        };
        let reopened = match self.reopen() {
            Ok(()) => "the writer reopened its connection".to_owned(),
            Err(e) => {
                format!("reopening its connection failed too ({e}); retried at the next write")
            }
        };
        tracing::error!(database = %self.shared.database(), %failed, %reopened, "the writer's connection was stuck inside a transaction");
        Err(Stuck { failed, reopened })
    }

    /// Replaces the connection by a new one to the same file, configured
    /// as the first; the old one closes, rolling back what it held.
    fn reopen(&mut self) -> rusqlite::Result<()> {
        let mut conn = Connection::open_with_flags(&self.reopen.path, file_flags())?;
        init_connection(&mut conn, self.reopen.busy_timeout, true)?;
        conn.wal_hook(Some(note_wal_size));
        self.conn = conn;
        Ok(())
    }
}

/// A connection that stayed inside a transaction: why, and what the writer
/// did about it.
struct Stuck {
    failed: String,
    reopened: String,
}

impl Stuck {
    /// The error of the write `what` that did not run because of it.
    fn error(&self, what: &str, database: &str) -> Error {
        Error::backend(
            BACKEND,
            format!(
                "{what}: the writer of the database {database} was left inside a transaction \
                 it could not roll back, so the write was not run; {}",
                self.reopened
            ),
            self.failed.clone(),
        )
    }
}

/// Another copy of a "database is locked" error made by [`locked`].
fn copy(e: &rusqlite::Error) -> rusqlite::Error {
    locked(e).unwrap_or(rusqlite::Error::InvalidQuery)
}

/// `ROLLBACK` (failing as many times as a test asks).
fn rollback(conn: &Connection) -> rusqlite::Result<()> {
    #[cfg(test)]
    if FAIL_ROLLBACKS.with(|n| n.replace(n.get().saturating_sub(1)) > 0) {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
            Some("a ROLLBACK failed by the test".into()),
        ));
    }
    conn.execute_batch("ROLLBACK")
}

/// The checkpoint thread: a `PASSIVE` checkpoint each time the writer asks,
/// until the writer stops.
fn checkpoint(conn: &Connection, asked: &Receiver<()>, table: &str) {
    while asked.recv().is_ok() {
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match done {
            Ok((wal, copied)) => tracing::trace!(table, wal, copied, "WAL checkpointed"),
            // Retried at the next request; the WAL only grows meanwhile.
            Err(e) => tracing::debug!(table, error = %e, "WAL checkpoint failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::config::{file_flags, init_connection};

    /// A writer on a fresh file with a table `t (k TEXT PRIMARY KEY)`.
    fn writer(name: &str) -> (Writer, PathBuf) {
        let path = crate::test_db_path(&format!("writer-{name}"));
        let open = || {
            let mut conn = Connection::open_with_flags(&path, file_flags()).unwrap();
            init_connection(&mut conn, Duration::from_secs(5), true).unwrap();
            conn
        };
        let conn = open();
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (k TEXT PRIMARY KEY)")
            .unwrap();
        let shown = path.display().to_string();
        let shared = Arc::new(Shared::for_tests("t", &shown, Duration::from_secs(5)));
        let reopen = Reopen {
            path: path.clone(),
            busy_timeout: Duration::from_secs(5),
        };
        let writer = Writer::start(conn, open(), shared, reopen, Duration::from_secs(5)).unwrap();
        (writer, path)
    }

    /// Queues `work` and waits for its answer.
    fn write<T: Send + 'static>(
        writer: &Writer,
        work: impl FnMut(&Shared, &mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(writer.write("test", "test a write", Span::none(), work))
    }

    fn insert(key: &'static str) -> impl FnMut(&Shared, &mut Connection) -> Result<()> + Send {
        move |shared, conn| {
            conn.execute("INSERT INTO t (k) VALUES (?1)", [key])
                .map(drop)
                .map_err(|e| shared.db_error("insert", e))
        }
    }

    fn stored(path: &PathBuf) -> Vec<String> {
        let conn = Connection::open(path).unwrap();
        let mut st = conn.prepare("SELECT k FROM t ORDER BY k").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// A write that left the connection inside a transaction (as a failed
    /// `ROLLBACK` would): the next write is committed, not kept in it.
    #[test]
    fn a_transaction_left_open_is_rolled_back_before_the_next_write() {
        let (writer, path) = writer("left-open");
        write(&writer, |_, conn| {
            conn.execute_batch("BEGIN; INSERT INTO t (k) VALUES ('inside')")
                .unwrap();
            Ok(())
        })
        .unwrap();
        write(&writer, insert("after")).unwrap();
        assert_eq!(stored(&path), ["after"], "the write was not committed");
    }

    /// A write that panics gets an error saying so, and the writer goes on.
    #[test]
    fn a_panicking_write_is_told_and_the_writer_goes_on() {
        let (writer, path) = writer("panics");
        let err = write(&writer, |_, _| -> Result<()> { panic!("a bug in a write") }).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("panicked"), "{text}");
        assert!(!text.contains("stopped"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        write(&writer, insert("next")).unwrap();
        assert_eq!(stored(&path), ["next"]);
    }

    /// A connection that stays inside a transaction (its `ROLLBACK` fails
    /// too) is replaced: the write that found it fails, saying so, and the
    /// next one is committed on the new connection, configured as the
    /// first.
    #[test]
    fn a_connection_stuck_in_a_transaction_is_reopened() {
        let (writer, path) = writer("stuck");
        write(&writer, |_, conn| {
            conn.execute_batch("BEGIN; INSERT INTO t (k) VALUES ('inside')")
                .unwrap();
            // The ROLLBACK the writer tries next fails.
            FAIL_ROLLBACKS.with(|n| n.set(1));
            Ok(())
        })
        .unwrap();
        let err = write(&writer, insert("refused")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("could not roll back"), "{text}");
        assert!(text.contains("reopened its connection"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        write(&writer, insert("after")).unwrap();
        assert_eq!(stored(&path), ["after"]);
        let busy: i64 = write(&writer, |_, conn| {
            Ok(conn
                .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
                .unwrap())
        })
        .unwrap();
        assert_eq!(busy, 5_000);
    }
}
