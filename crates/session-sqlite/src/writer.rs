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
//! writes fails with that "database is locked" error.
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
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use rusqlite::{Connection, ErrorCode};
use session_core::{Error, Result};
use tokio::sync::oneshot;
use tracing::Span;

use crate::store::{BACKEND, Shared};

/// Writes committed together at most.
const MAX_GROUP: usize = 64;

/// WAL pages after which the writer asks for a checkpoint: SQLite's
/// default `wal_autocheckpoint`.
const CHECKPOINT_PAGES: c_int = 1000;

thread_local! {
    /// The WAL's size in pages after the writer thread's last commit, as
    /// SQLite's WAL hook reported it.
    static WAL_PAGES: Cell<c_int> = const { Cell::new(0) };
}

/// The writer connection's WAL hook (it replaces the automatic
/// checkpoint): notes the WAL's size for [`serve`].
fn note_wal_size(_wal: &rusqlite::hooks::Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// One queued write: runs on the writer's connection, then replies.
pub(crate) trait Job: Send {
    /// Runs the write; `false` when it failed (its error is kept).
    fn run(&mut self, shared: &Shared, conn: &mut Connection) -> bool;
    /// Sends the outcome of the last run to the caller.
    fn reply(self: Box<Self>);
    /// Sends `error` (a statement error of the group) to the caller.
    fn fail(self: Box<Self>, shared: &Shared, error: rusqlite::Error);
}

/// A write and the channel its caller waits on.
pub(crate) struct Task<T, F> {
    pub(crate) work: F,
    /// What the write does, for its error messages ("set a session").
    pub(crate) what: &'static str,
    pub(crate) span: Span,
    pub(crate) outcome: Option<Result<T>>,
    pub(crate) reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for Task<T, F>
where
    T: Send,
    F: FnMut(&Shared, &mut Connection) -> Result<T> + Send,
{
    fn run(&mut self, shared: &Shared, conn: &mut Connection) -> bool {
        let _entered = self.span.enter();
        let outcome = (self.work)(shared, conn);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn reply(self: Box<Self>) {
        if let Some(outcome) = self.outcome {
            // The caller may have gone (its future was dropped): nothing
            // to tell then.
            let _ = self.reply.send(outcome);
        }
    }

    fn fail(self: Box<Self>, shared: &Shared, error: rusqlite::Error) {
        let _ = self.reply.send(Err(shared.db_error(self.what, error)));
    }
}

/// The handle of the writer thread: the queue into it. The thread ends,
/// closing its connection, when the last handle is dropped and the queue
/// is empty.
pub(crate) struct Writer {
    jobs: Sender<Box<dyn Job>>,
    database: String,
}

impl Writer {
    /// Starts the writer thread on `conn` and the checkpoint thread on
    /// `checkpoints`, two connections to the same file (already
    /// configured: WAL, busy timeout, `synchronous`).
    ///
    /// # Errors
    ///
    /// When a thread cannot be started, naming `database`.
    pub(crate) fn start(
        conn: Connection,
        checkpoints: Connection,
        shared: Arc<Shared>,
        database: String,
    ) -> Result<Self> {
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
        let (jobs, queue) = channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("session-sqlite-writer".into())
            .spawn(move || serve(conn, &shared, &queue, &kick))
            .map_err(cannot)?;
        Ok(Writer { jobs, database })
    }

    /// Queues `job`.
    ///
    /// # Errors
    ///
    /// When the writer thread is gone, naming the database.
    pub(crate) fn submit(&self, op: &str, job: Box<dyn Job>) -> Result<()> {
        self.jobs.send(job).map_err(|_| self.stopped(op))
    }

    /// The error of a write whose reply never came.
    pub(crate) fn stopped(&self, op: &str) -> Error {
        Error::backend(
            BACKEND,
            format!(
                "{op}: the writer of the database {} stopped before the write completed",
                self.database
            ),
            "the writer thread ended",
        )
    }
}

/// The writer thread: takes the queued writes, as many as are waiting (up
/// to [`MAX_GROUP`]), and runs them, until every handle is dropped.
fn serve(
    mut conn: Connection,
    shared: &Shared,
    queue: &Receiver<Box<dyn Job>>,
    checkpoint: &SyncSender<()>,
) {
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
    while let Ok(first) = queue.recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let ran = catch_unwind(AssertUnwindSafe(|| {
            run_group(&mut conn, shared, &mut group)
        }));
        if ran.is_err() {
            // A write panicked: its caller and those of the writes not yet
            // answered get the "writer stopped" error (their reply channels
            // close); the connection is left outside any transaction and
            // the writer goes on.
            tracing::error!(table = %shared.table, "a write panicked; its group was abandoned");
            group.clear();
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
        if WAL_PAGES.with(Cell::get) >= CHECKPOINT_PAGES {
            // Full: a checkpoint is already asked for.
            let _ = checkpoint.try_send(());
        }
    }
    tracing::debug!(table = %shared.table, "the SQLite writer stopped");
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

fn run_group(conn: &mut Connection, shared: &Shared, group: &mut Vec<Box<dyn Job>>) {
    if group.len() == 1 {
        let mut job = group.pop().expect("one job");
        job.run(shared, conn);
        job.reply();
        return;
    }
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        if let rusqlite::Error::SqliteFailure(code, message) = &e {
            if matches!(
                code.code,
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked
            ) {
                // Another process held the lock past the busy timeout:
                // every write of the group would wait as long again.
                for job in group.drain(..) {
                    job.fail(
                        shared,
                        rusqlite::Error::SqliteFailure(*code, message.clone()),
                    );
                }
                return;
            }
        }
        return one_by_one(conn, shared, group);
    }
    let all_ran = group.iter_mut().all(|job| job.run(shared, conn));
    if all_ran && conn.execute_batch("COMMIT").is_ok() {
        tracing::trace!(writes = group.len(), "writes committed together");
        for job in group.drain(..) {
            job.reply();
        }
        return;
    }
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    one_by_one(conn, shared, group);
}

/// Runs each write of `group` alone, in its own transaction, as if it had
/// never been grouped.
fn one_by_one(conn: &mut Connection, shared: &Shared, group: &mut Vec<Box<dyn Job>>) {
    for mut job in group.drain(..) {
        job.run(shared, conn);
        job.reply();
    }
}
