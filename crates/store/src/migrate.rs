//! Embedded migrations, one set per backend with the same names.

use crate::{DbConnection, StoreError};
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Arbitrary constant: the advisory lock that keeps concurrent instances from
/// migrating the same PostgreSQL database at once.
const MIGRATION_LOCK: i64 = 0x4153_5345_4e54;

/// Applies pending migrations; returns the names of those applied.
pub fn run(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    let err = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
    let applied = match conn {
        // Nothing pending (every start but the first after an upgrade): no lock. Else
        // one transaction holds a transaction-level lock and applies them all (each
        // in a savepoint), so it works through PgBouncer in transaction mode, where a
        // session lock and its unlock could land on different server connections.
        DbConnection::Postgres(pg) => {
            // Diesel's check creates its table when missing: only ask once it exists,
            // or two processes starting on an empty database race to create it.
            #[derive(diesel::QueryableByName)]
            struct Table {
                #[diesel(sql_type = diesel::sql_types::Bool)]
                exists: bool,
            }
            let known = diesel::sql_query(
                "SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS exists",
            )
            .get_result::<Table>(pg)?
            .exists;
            if known && !pg.has_pending_migration(POSTGRES).map_err(err)? {
                return Ok(Vec::new());
            }
            pg.transaction(|pg| {
                diesel::sql_query(format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                    .execute(pg)?;
                pg.run_pending_migrations(POSTGRES)
                    .map(|v| v.iter().map(|m| m.to_string()).collect::<Vec<_>>())
                    .map_err(err)
            })?
        }
        DbConnection::Sqlite(lite) => lite
            .run_pending_migrations(SQLITE)
            .map(|v| v.iter().map(|m| m.to_string()).collect())
            .map_err(err)?,
    };
    Ok(applied)
}
