//! The session table's DDL and the statements built from a [`TableName`].
//!
//! The DDL is SQLSpec's SQLite schema, column for column and type for type,
//! so a table created by SQLSpec and one created here are interchangeable.

use session_core::TableName;

/// The DDL of the session table `table`: the `CREATE TABLE IF NOT EXISTS`
/// statement, then the `CREATE INDEX IF NOT EXISTS` of the partial index on
/// `expires_at`. Both are idempotent.
///
/// The columns are those of SQLSpec's SQLite store: `session_id TEXT PRIMARY
/// KEY`, `data BLOB NOT NULL`, `expires_at INTEGER` (unix seconds, `NULL` for
/// a session that never expires), `created_at` and `updated_at` (`INTEGER NOT
/// NULL`, unix seconds).
pub(crate) fn ddl(table: &TableName) -> Vec<String> {
    let name = table.qualified();
    let index = table.index_name();
    // A schema-qualified table keeps its index in the same schema; SQLite
    // names the schema on the index, not on the table of `ON`.
    let index_qualified = match table.schema() {
        Some(schema) => format!("{schema}.{index}"),
        None => index,
    };
    let bare = table.table();
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {name} (\n    \
             session_id TEXT PRIMARY KEY,\n    \
             data BLOB NOT NULL,\n    \
             expires_at INTEGER,\n    \
             created_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),\n    \
             updated_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))\n)"
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {index_qualified}\nON {bare}(expires_at) WHERE expires_at IS NOT NULL"
        ),
    ]
}

/// The statement `delete_expired` runs repeatedly, each run its own
/// transaction: delete at most `?2` rows whose `expires_at` is at or before
/// `?1` (unix seconds). The inner `SELECT` filters on `expires_at` alone, so
/// SQLite finds the rows through the partial index `idx_<table>_expires_at`.
fn delete_expired_batch(table: &TableName) -> String {
    let t = table.qualified();
    format!(
        "DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t} \
         WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT ?2)"
    )
}

/// Every statement the store runs, formatted once with the validated table
/// name when the store is built. All values are bound parameters.
#[derive(Debug)]
pub(crate) struct Statements {
    /// `?1` key, `?2` now (unix seconds).
    pub(crate) get: String,
    /// `?1` key, `?2` now, `?3` new expiry, `?4` now as the update time.
    pub(crate) renew: String,
    /// `?1` key, `?2` data, `?3` expiry, `?4` now.
    pub(crate) set: String,
    /// `?1` key.
    pub(crate) delete: String,
    pub(crate) delete_all: String,
    /// `?1` key, `?2` now.
    pub(crate) exists: String,
    /// `?1` key, `?2` now.
    pub(crate) expires_at: String,
    /// `?1` now, `?2` batch size.
    pub(crate) delete_expired: String,
    /// `?1` key, `?2` data, `?3` expiry, `?4` now.
    pub(crate) create: String,
    /// `?1` key, `?2` data, `?3` expiry, `?4` now.
    pub(crate) update: String,
    /// `?1` key, `?2` data, `?3` expiry, `?4` now, `?5` the expected data.
    pub(crate) compare_and_set: String,
    /// `?1` key, `?2` now.
    pub(crate) delete_live: String,
}

impl Statements {
    pub(crate) fn new(table: &TableName) -> Self {
        let t = table.qualified();
        // A row is live iff it has no expiry or its expiry (whole seconds,
        // rounded up when written) is later than now (whole seconds, rounded
        // down). See `clock` for why this is never early and at most one
        // second late.
        const LIVE: &str = "(expires_at IS NULL OR expires_at > ?2)";
        Statements {
            get: format!("SELECT data FROM {t} WHERE session_id = ?1 AND {LIVE}"),
            // One statement for every case: a live row with an expiry gets
            // the new one, a live row without keeps NULL, and a missing or
            // expired row matches nothing (one statement on a miss too).
            renew: format!(
                "UPDATE {t} SET expires_at = CASE WHEN expires_at IS NULL THEN NULL ELSE ?3 END, \
                 updated_at = ?4 WHERE session_id = ?1 AND {LIVE} RETURNING data"
            ),
            // An upsert, not `REPLACE INTO`: an existing row (live or
            // expired) is updated in place and keeps its `created_at`,
            // where REPLACE deleted it and inserted a new row at the end
            // of the table, rewriting both indexes, after a sub-select
            // for `created_at` (6.8 WAL pages and 48 µs a statement
            // against 1.0 and 13 µs: see docs/sqlite.md).
            set: format!(
                "INSERT INTO {t} (session_id, data, expires_at, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?4) \
                 ON CONFLICT(session_id) DO UPDATE SET data = excluded.data, \
                 expires_at = excluded.expires_at, updated_at = excluded.updated_at"
            ),
            delete: format!("DELETE FROM {t} WHERE session_id = ?1"),
            delete_all: format!("DELETE FROM {t}"),
            exists: format!("SELECT 1 FROM {t} WHERE session_id = ?1 AND {LIVE}"),
            expires_at: format!("SELECT expires_at FROM {t} WHERE session_id = ?1 AND {LIVE}"),
            delete_expired: delete_expired_batch(table),
            create: format!(
                "INSERT INTO {t} (session_id, data, expires_at, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?4) \
                 ON CONFLICT(session_id) DO UPDATE SET data = excluded.data, \
                 expires_at = excluded.expires_at, created_at = excluded.created_at, \
                 updated_at = excluded.updated_at \
                 WHERE {t}.expires_at IS NOT NULL AND {t}.expires_at <= ?4"
            ),
            update: format!(
                "UPDATE {t} SET data = ?2, expires_at = ?3, updated_at = ?4 \
                 WHERE session_id = ?1 AND (expires_at IS NULL OR expires_at > ?4)"
            ),
            // `update` with one more condition: the row still holds exactly
            // the expected bytes. `data` is compared as a BLOB, so a row a
            // JSON-storing writer left as TEXT matches the bytes `get`
            // returned for it (the cast changes only the type, never the
            // bytes, of a UTF-8 database's text). One statement: SQLite's
            // write lock makes the check and the write one step, so of many
            // concurrent calls from one expected value one changes the row.
            compare_and_set: format!(
                "UPDATE {t} SET data = ?2, expires_at = ?3, updated_at = ?4 \
                 WHERE session_id = ?1 AND (expires_at IS NULL OR expires_at > ?4) \
                 AND CAST(data AS BLOB) = ?5"
            ),
            // Removes only a live row, so the changed-row count (0 or 1) is
            // the answer; an expired row is left to cleanup.
            delete_live: format!("DELETE FROM {t} WHERE session_id = ?1 AND {LIVE}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    fn now_secs() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs() as i64
    }

    #[test]
    fn ddl_names_the_table_and_its_index() {
        let ddl = ddl(&TableName::new("litestar_session", 63).unwrap());
        assert!(ddl[0].starts_with("CREATE TABLE IF NOT EXISTS litestar_session ("));
        assert!(ddl[1].contains("idx_litestar_session_expires_at"));
        let sql = delete_expired_batch(&TableName::new("litestar_session", 63).unwrap());
        assert!(sql.starts_with("DELETE FROM litestar_session WHERE rowid IN"));
    }

    /// The conditional writes find their one row through the primary key:
    /// the live and expected-data conditions are checked on that row only.
    #[test]
    fn conditional_writes_search_by_the_primary_key() {
        let table = TableName::new("keyed_sessions", 63).unwrap();
        let conn = Connection::open_in_memory().unwrap();
        for statement in ddl(&table) {
            conn.execute_batch(&statement).unwrap();
        }
        let sql = Statements::new(&table);
        let now = now_secs();
        for (name, statement, params) in [
            (
                "update",
                &sql.update,
                rusqlite::params!["k", b"v".as_slice(), now, now].to_vec(),
            ),
            (
                "compare_and_set",
                &sql.compare_and_set,
                rusqlite::params!["k", b"v".as_slice(), now, now, b"e".as_slice()].to_vec(),
            ),
            (
                "delete_live",
                &sql.delete_live,
                rusqlite::params!["k", now].to_vec(),
            ),
        ] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
                .unwrap()
                .query_map(params.as_slice(), |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                plan,
                [
                    "SEARCH keyed_sessions USING INDEX sqlite_autoindex_keyed_sessions_1 (session_id=?)"
                ],
                "{name}"
            );
        }
    }

    /// Moved from tests/adapter.rs: the cleanup statement finds its rows
    /// through the partial index and never scans the table.
    #[test]
    fn cleanup_uses_the_expires_at_index() {
        let table = "plan_sessions";
        let conn = Connection::open_in_memory().unwrap();
        for statement in ddl(&TableName::new(table, 63).unwrap()) {
            conn.execute_batch(&statement).unwrap();
        }
        let sql = delete_expired_batch(&TableName::new(table, 63).unwrap());
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(rusqlite::params![now_secs(), 1000], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let index = format!("idx_{table}_expires_at");
        assert!(
            plan.iter().any(|step| step.contains(&index)),
            "the cleanup plan does not use {index}: {plan:#?}"
        );
        assert!(
            !plan
                .iter()
                .any(|step| step.starts_with(&format!("SCAN {table}"))),
            "the cleanup plan scans the table: {plan:#?}"
        );
    }
}
