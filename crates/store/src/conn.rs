use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use std::fmt;

/// One connection type over both backends; queries written once run on either.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        })
    }
}

/// A database URL, its backend decided by the scheme (never by trial: SQLite would
/// accept any string as a file name).
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    Postgres(String),
    Sqlite(String),
}

impl DbUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                "unsupported database URL: use postgres://… or sqlite://<path>".to_owned()
            })?;
        if path.is_empty() {
            return Err("the sqlite:// URL names no file".into());
        }
        Ok(DbUrl::Sqlite(path.to_owned()))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DbUrl::Postgres(_) => Backend::Postgres,
            DbUrl::Sqlite(_) => Backend::Sqlite,
        }
    }
}

// URLs may carry passwords: never print them.
impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::Postgres(_) => f.write_str("DbUrl::Postgres(..)"),
            DbUrl::Sqlite(p) => write!(f, "DbUrl::Sqlite({p})"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Connect(#[from] diesel::ConnectionError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

pub struct Manager {
    pub(crate) url: DbUrl,
    /// See [`crate::StoreOptions::statement_cache`].
    pub(crate) statement_cache: bool,
}

/// Durability and concurrency settings of every SQLite connection: WAL so readers do
/// not block the writer, FULL sync so an acknowledged write survives power loss,
/// a busy timeout so concurrent writers wait rather than fail.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;";

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<DbConnection, ConnectError> {
        match &self.url {
            DbUrl::Postgres(url) => {
                let mut conn = PgConnection::establish(url)?;
                if !self.statement_cache {
                    conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
                }
                Ok(DbConnection::Postgres(conn))
            }
            DbUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path)?;
                conn.batch_execute(SQLITE_PRAGMAS)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectError> {
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }

    // Checked on return to the pool, so a dead connection is dropped without a
    // round trip on every checkout.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        use diesel::r2d2::R2D2Connection;
        match conn {
            DbConnection::Postgres(c) => c.is_broken(),
            DbConnection::Sqlite(c) => c.is_broken(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_decides_the_backend() {
        assert_eq!(
            DbUrl::parse("postgres://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DbUrl::parse("postgresql://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DbUrl::parse("sqlite://data/a.db").unwrap(),
            DbUrl::Sqlite("data/a.db".into())
        );
        assert_eq!(
            DbUrl::parse("sqlite:/abs/a.db").unwrap(),
            DbUrl::Sqlite("/abs/a.db".into())
        );
        assert!(DbUrl::parse("mysql://x").is_err());
        assert!(DbUrl::parse("data/a.db").is_err());
        assert!(DbUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn debug_hides_postgres_credentials() {
        let url = DbUrl::parse("postgres://u:secret@h/db").unwrap();
        assert!(!format!("{url:?}").contains("secret"));
    }
}
