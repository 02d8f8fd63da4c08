//! Telegram's sending limits kept in the database, so that they hold across every
//! worker process: a reservation locks the bot's row (then reads and moves the chat's)
//! in one short transaction, by the rule in [`assent_core::send_rate`], on the
//! database's clock.

use crate::schema::telegram_send_slots;
use crate::{DbConnection, StoreResult};
use assent_core::send_rate::{self, Buckets, SendLimits, Slot};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use std::time::Duration;

/// The bot's own row: its overall limit.
const BOT: i64 = 0;

/// How long a chat's row is kept after its last slot.
const IDLE: Duration = Duration::from_secs(3600);

#[derive(QueryableByName)]
struct Clock {
    #[diesel(sql_type = BigInt)]
    now_us: i64,
}

/// Microseconds since the epoch on the database's clock, which every process shares.
fn clock(conn: &mut DbConnection) -> StoreResult<i64> {
    let sql = match conn {
        DbConnection::Postgres(_) => {
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT AS now_us"
        }
        DbConnection::Sqlite(_) => {
            "SELECT CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER) AS now_us"
        }
    };
    Ok(diesel::sql_query(sql).get_result::<Clock>(conn)?.now_us)
}

/// How long a reservation waits for the bot's row: a worker that stalls holding it
/// (a host gone without closing its connection) must not stall every other's sends.
pub const LOCK_WAIT_MS: u32 = 500;

/// Locks the bot's row, which orders every reservation of the installation, and
/// reads it (created if a restore lost it). Waits at most [`LOCK_WAIT_MS`]: then the
/// error says "lock timeout" ([`is_lock_timeout`]).
fn lock_bot(conn: &mut DbConnection) -> StoreResult<i64> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query(format!("SET LOCAL lock_timeout = '{LOCK_WAIT_MS}ms'")).execute(pg)?;
    }
    let locked = |conn: &mut DbConnection| -> StoreResult<Option<i64>> {
        let query = telegram_send_slots::table
            .find(BOT)
            .select(telegram_send_slots::next_at);
        Ok(match conn {
            DbConnection::Postgres(pg) => query.for_update().get_result(pg).optional()?,
            DbConnection::Sqlite(lite) => query.get_result(lite).optional()?,
        })
    };
    // The migration seeds the row: the insert is for a database that lost it.
    if let Some(next_at) = locked(conn)? {
        return Ok(next_at);
    }
    let row = diesel::insert_into(telegram_send_slots::table)
        .values((
            telegram_send_slots::chat_id.eq(BOT),
            telegram_send_slots::next_at.eq(0),
        ))
        .on_conflict_do_nothing();
    match conn {
        DbConnection::Postgres(pg) => row.execute(pg)?,
        DbConnection::Sqlite(lite) => row.execute(lite)?,
    };
    locked(conn)?.ok_or(crate::StoreError::NotFound)
}

fn put(conn: &mut DbConnection, chat_id: i64, next_at: i64) -> StoreResult<()> {
    let row = diesel::insert_into(telegram_send_slots::table)
        .values((
            telegram_send_slots::chat_id.eq(chat_id),
            telegram_send_slots::next_at.eq(next_at),
        ))
        .on_conflict(telegram_send_slots::chat_id)
        .do_update()
        .set(telegram_send_slots::next_at.eq(next_at));
    match conn {
        DbConnection::Postgres(pg) => row.execute(pg)?,
        DbConnection::Sqlite(lite) => row.execute(lite)?,
    };
    Ok(())
}

/// True for the error of a reservation that waited [`LOCK_WAIT_MS`] for the bot's row.
pub fn is_lock_timeout(error: &crate::StoreError) -> bool {
    error.to_string().contains("lock timeout")
}

/// Reserves a slot for a message to `chat_id` (call inside a transaction: the bot's
/// row stays locked until it ends). Chat id 0 is no chat (it is the bot's row).
pub fn reserve(conn: &mut DbConnection, limits: &SendLimits, chat_id: i64) -> StoreResult<Slot> {
    if chat_id == BOT {
        return Err(crate::StoreError::invalid(
            "chat id 0 names no Telegram chat",
        ));
    }
    let overall = lock_bot(conn)?;
    let chat = telegram_send_slots::table
        .find(chat_id)
        .select(telegram_send_slots::next_at)
        .get_result::<i64>(conn)
        .optional()?
        .unwrap_or(i64::MIN);
    let now = clock(conn)?;
    let before = Buckets { overall, chat };
    let (slot, after) = send_rate::reserve(limits, now, chat_id, before);
    if after.overall != before.overall {
        put(conn, BOT, after.overall)?;
    }
    if after.chat != before.chat {
        put(conn, chat_id, after.chat)?;
    }
    Ok(slot)
}

/// Holds every send off for `retry_after` (Telegram answered 429).
pub fn hold_off(conn: &mut DbConnection, retry_after: Duration) -> StoreResult<()> {
    let overall = lock_bot(conn)?;
    let now = clock(conn)?;
    put(conn, BOT, send_rate::hold_off(now, overall, retry_after))
}

/// Forgets chats with no slot for an hour; returns how many.
pub fn prune(conn: &mut DbConnection) -> StoreResult<usize> {
    let before = clock(conn)? - IDLE.as_micros() as i64;
    Ok(diesel::delete(
        telegram_send_slots::table
            .filter(telegram_send_slots::chat_id.ne(BOT))
            .filter(telegram_send_slots::next_at.lt(before)),
    )
    .execute(conn)?)
}
