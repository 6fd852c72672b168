//! The Oracle migration SQL, offline (no server here; live runs are in
//! `live.rs`, gated on ORACLE_TEST_*).

use session_core::TableName;
use session_oracle::migrations::{MigrationSql, migration_sql, migrations};
use session_oracle::sql::Statements;
use session_oracle::{MAX_IDENTIFIER_LEN, StoreSettings};

fn table(name: &str) -> TableName {
    TableName::new_qualified(name, MAX_IDENTIFIER_LEN).unwrap()
}

#[test]
fn the_first_migration_is_create_table_exactly() {
    for in_memory in [false, true] {
        let settings = StoreSettings::new()
            .table_name("app_sessions")
            .unwrap()
            .in_memory(in_memory);
        let list = migrations(&settings);
        session_core::migrate::validate_list(&list).unwrap();
        let sql = Statements::new(settings.table(), in_memory);
        assert_eq!(list[0].version, "ext_litestar_0001");
        assert_eq!(list[0].statements, [sql.create_table(), sql.create_index()]);
    }
    // in_memory changes the SQL, so the checksum.
    let plain = migrations(&StoreSettings::new())[0].checksum();
    let inmem = migrations(&StoreSettings::new().in_memory(true))[0].checksum();
    assert_ne!(plain, inmem);
}

#[test]
fn the_tracking_table_and_its_lock() {
    let sql = MigrationSql::new(&table("app_sessions"));
    assert_eq!(
        sql.tracking_ddl(),
        "CREATE TABLE app_sessions_migrations (\n    \
         version VARCHAR2(64) PRIMARY KEY,\n    \
         description VARCHAR2(400) NOT NULL,\n    \
         checksum VARCHAR2(64) NOT NULL,\n    \
         applied_at TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL\n)"
    );
    assert_eq!(
        sql.lock(),
        "LOCK TABLE app_sessions_migrations IN EXCLUSIVE MODE"
    );
    assert_eq!(
        sql.insert(),
        "INSERT INTO app_sessions_migrations (version, description, checksum) \
         VALUES (:version, :description, :checksum)"
    );
    assert!(
        sql.select_applied()
            .starts_with("SELECT version, description, checksum, ")
    );
    assert!(
        sql.select_applied()
            .ends_with("FROM app_sessions_migrations ORDER BY version")
    );
}

#[test]
fn catalog_queries_bind_names_and_honour_a_schema() {
    let sql = MigrationSql::new(&table("auth.sessions"));
    assert!(
        sql.lock()
            .starts_with("LOCK TABLE auth.sessions_migrations ")
    );
    for text in [sql.table_exists(), sql.columns()] {
        assert!(text.contains("table_name = UPPER(:tbl)"), "{text}");
        assert!(
            text.contains("COALESCE(UPPER(:owner), SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA'))"),
            "{text}"
        );
        assert!(
            !text.contains("sessions'"),
            "names are bound, not spliced: {text}"
        );
    }
}

#[test]
fn the_script_creates_records_and_ends_each_statement() {
    let settings = StoreSettings::new().in_memory(true);
    let script = migration_sql(&settings);
    assert!(
        script
            .starts_with("-- migration tracking table\nCREATE TABLE litestar_session_migrations (")
    );
    assert!(script.contains(") INMEMORY;\n"));
    assert!(script.contains(
        "CREATE INDEX idx_litestar_session_expires_at ON litestar_session(expires_at);\n"
    ));
    let checksum = migrations(&settings)[0].checksum();
    assert!(script.contains(&format!(
        "INSERT INTO litestar_session_migrations (version, description, checksum) VALUES ('ext_litestar_0001', 'create the session table and its index on expires_at', '{checksum}');"
    )));
}
