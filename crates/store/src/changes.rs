//! What other processes keep and must drop: a change announced with [`announce`] in
//! the transaction that makes it reaches every process's [`listen`]er when that
//! transaction commits (PostgreSQL `NOTIFY`), so an API key revoked through one API
//! instance stops working on the others at once, and a company's branding or policy
//! shows on every instance's pages at once, not when their caches expire.
//!
//! SQLite is one process: the change is dropped there by the code that made it. A
//! listener needs a session of its own: through PgBouncer in transaction mode it must
//! connect to PostgreSQL directly (`ASSENT_DB_LISTEN_URL`).

use crate::{DbConnection, StoreResult};
use diesel::connection::Connection;
use diesel::pg::PgConnection;
use diesel::sql_types::Text;
use diesel::{QueryResult, RunQueryDsl};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The `NOTIFY` channel.
pub const CHANNEL: &str = "assent_changes";

/// How often the listener looks for notifications (non-blocking reads).
const POLL: Duration = Duration::from_millis(50);

/// A change others may have kept a copy of. Ids only: payloads reach whoever can
/// listen on the database, and are logged by no one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A company's page frame (name, language, branding, policy in force).
    Tenant(String),
    /// An API key was revoked (its client id).
    KeyRevoked(String),
    /// Anything may have changed: notifications were missed while the listener was
    /// not connected.
    Everything,
}

impl Change {
    fn payload(&self) -> String {
        match self {
            Change::Tenant(id) => format!("tenant:{id}"),
            Change::KeyRevoked(id) => format!("key:{id}"),
            Change::Everything => "all".into(),
        }
    }

    /// Reads a payload; one this version does not know means [`Change::Everything`].
    pub fn parse(payload: &str) -> Change {
        match payload.split_once(':') {
            Some(("tenant", id)) => Change::Tenant(id.to_owned()),
            Some(("key", id)) => Change::KeyRevoked(id.to_owned()),
            _ => Change::Everything,
        }
    }
}

/// Announces `change` to every process when the current transaction commits
/// (nothing if it rolls back). SQLite: nothing to do.
pub fn announce(conn: &mut DbConnection, change: &Change) -> StoreResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(CHANNEL)
            .bind::<Text, _>(change.payload())
            .execute(pg)?;
    }
    Ok(())
}

/// Stops its listener when dropped.
#[derive(Debug)]
pub struct Listening {
    stop: Arc<AtomicBool>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Listens for changes on a session of its own to the PostgreSQL at `url`, on a
/// thread of its own, calling `on_change` with each. After every (re)connection it
/// calls it with [`Change::Everything`], as changes may have been missed meanwhile;
/// a lost connection is retried every few seconds.
pub fn listen(url: String, on_change: impl Fn(Change) + Send + 'static) -> Listening {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::Builder::new()
        .name("assent-changes".into())
        .spawn(move || {
            let mut retry = Duration::from_millis(200);
            while !stopped.load(Ordering::Relaxed) {
                match session(&url) {
                    Ok(mut conn) => {
                        retry = Duration::from_millis(200);
                        on_change(Change::Everything);
                        if let Err(error) = relay(&mut conn, &stopped, &on_change) {
                            tracing::warn!(%error, "lost the change notifications; reconnecting");
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot listen for changes; caches expire by age meanwhile");
                        std::thread::sleep(retry);
                        retry = (retry * 2).min(Duration::from_secs(5));
                    }
                }
            }
        })
        .expect("spawn the change listener");
    Listening { stop }
}

fn session(url: &str) -> QueryResult<PgConnection> {
    let mut conn = PgConnection::establish(url).map_err(|e| {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UnableToSendCommand,
            Box::new(e.to_string()),
        )
    })?;
    diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut conn)?;
    Ok(conn)
}

/// How often the listener writes to itself: reading the socket does not notice a
/// server that went away quietly, nor a pooler that gave `LISTEN` to a session it
/// then handed to someone else.
const PING: Duration = Duration::from_secs(10);

fn relay(
    conn: &mut PgConnection,
    stop: &AtomicBool,
    on_change: &impl Fn(Change),
) -> QueryResult<()> {
    let mut idle = Duration::ZERO;
    let mut pings = 0u64;
    let mut awaited: Option<String> = None;
    let mut warned = false;
    while !stop.load(Ordering::Relaxed) {
        for notification in conn.notifications_iter() {
            let payload = notification?.payload;
            if payload.starts_with("ping:") {
                if awaited.as_deref() == Some(payload.as_str()) {
                    awaited = None;
                }
                continue;
            }
            on_change(Change::parse(&payload));
        }
        std::thread::sleep(POLL);
        idle += POLL;
        if idle >= PING {
            idle = Duration::ZERO;
            if awaited.is_some() && !warned {
                warned = true;
                tracing::warn!(
                    "change notifications do not arrive on this session (is ASSENT_DB_LISTEN_URL \
                     a pooler in transaction mode? it must reach PostgreSQL itself); caches \
                     expire by age meanwhile"
                );
            }
            pings += 1;
            let ping = format!("ping:{}-{pings}", std::process::id());
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<Text, _>(CHANNEL)
                .bind::<Text, _>(&ping)
                .execute(conn)?;
            awaited = Some(ping);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_read_back_and_unknown_ones_drop_everything() {
        for change in [
            Change::Tenant("t1".into()),
            Change::KeyRevoked("k1".into()),
            Change::Everything,
        ] {
            assert_eq!(Change::parse(&change.payload()), change);
        }
        assert_eq!(Change::parse("purpose:x"), Change::Everything);
        assert_eq!(Change::parse(""), Change::Everything);
    }
}
