//! The whole conformance suite against PostgreSQL, each store on a table of
//! its own, dropped when the case ends.

use std::sync::Mutex;

use session_conformance::{Skip, StoreFactory};
use session_postgres::{PostgresConfig, PostgresStore};

/// Makes stores on fresh tables of the test server and drops those tables
/// when the case is over (the factory lives as long as one case).
#[derive(Default)]
struct PgFactory {
    made: Mutex<Vec<String>>,
}

impl StoreFactory for PgFactory {
    type Store = PostgresStore;

    async fn new_store(&self) -> Result<PostgresStore, Skip> {
        let url = session_test_support::pg_url().map_err(Skip)?;
        let table = session_test_support::unique_table_name("conformance");
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(table.clone());
        let config = PostgresConfig {
            table,
            ..PostgresConfig::default()
        };
        let store = PostgresStore::from_url(&url, config)
            .expect("the test URL and a unique table name are valid");
        store.create_table().await.expect("create the table");
        Ok(store)
    }
}

impl Drop for PgFactory {
    fn drop(&mut self) {
        let tables = std::mem::take(self.made.get_mut().unwrap_or_else(|p| p.into_inner()));
        if let Ok(url) = session_test_support::pg_url() {
            if let Err(e) = session_test_support::drop_tables_blocking(&url, &tables) {
                eprintln!("could not drop the test tables {tables:?}: {e}");
            }
        }
    }
}

session_conformance::store_conformance!(postgres, PgFactory::default());
