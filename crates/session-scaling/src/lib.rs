//! The scaling benchmark of the session stores (issue 21). The crate has no
//! library code: everything is in `benches/scaling.rs`, and the results and
//! what they mean are in `docs/scaling.md`.
//!
//! It bulk-loads a store's table (or a throwaway Redis) to 10 thousand,
//! 1 million and 10 million sessions of 1 KiB, a quarter of them expired
//! (every 4th key, so spread through the table), each backend through its
//! fast path and not through the store: PostgreSQL `COPY ... FROM STDIN`
//! (binary) into a table made by the store's own migrations, SQLite
//! prepared `INSERT`s in transactions of one million rows into a file
//! database made by `SqliteStore`, Redis pipelined `SET ... PX` in batches
//! of 1,000 on a `redis-server` of its own. At each size it measures,
//! through the store, read, renewing read, write, create and delete at 1
//! and 16 tasks (ops/s, p50, p99), the cleanup of the expired quarter (its
//! total time and the p99 of reads running during it), and the storage per
//! million sessions. It prints Markdown tables.
//!
//! ```text
//! cargo bench -p session-scaling
//! SCALING_SIZES=10000,1000000 SCALING_BACKENDS=sqlite,postgres cargo bench -p session-scaling
//! ```
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `SCALING_SIZES` | `10000,1000000,10000000` | sessions loaded, one run per size |
//! | `SCALING_BACKENDS` | `sqlite,postgres,redis` | which stores |
//! | `SCALING_ROUNDS` | `3` | rounds per case; medians reported |
//! | `SCALING_OPS` | `5000` | operations per round |
//!
//! Before each size it prints the disk (or, for Redis, the memory) the size
//! needs, estimated as rows × 1.5 KiB (PostgreSQL 1.75 KiB: the
//! measured storage per session, rounded up), and skips the size with the reason
//! when the file system or `MemAvailable` has less than that plus 20% and
//! 1 GiB. PostgreSQL comes from
//! `session_test_support::pg_url` and its tables are dropped afterwards.
//! Without `--bench` (as `cargo test --benches` runs it) it prints one line
//! and touches no database.
