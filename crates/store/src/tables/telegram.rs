//! What the Telegram bot keeps: one-time link tokens, the index of which subjects a
//! chat is linked to, each chat's language and conversation state, and the update
//! ids already handled.
//!
//! The bot learns the tenant only from a token or from this index, so these tables
//! are installation-level; the tenant-owned record of a binding stays in
//! `telegram_chats` ([`bind_chat`]), written in the same transaction.

use crate::schema::{
    telegram_chat_directory, telegram_chat_state, telegram_chats, telegram_link_tokens,
    telegram_updates,
};
use crate::{DbConnection, StoreResult};
use assent_core::crypto::{b64url, random_bytes, sha256};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

/// How long a `t.me/<bot>?start=` link stays usable.
pub const LINK_TOKEN_TTL_MINUTES: i64 = 15;

/// What a link token turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkToken {
    Valid {
        tenant_id: String,
        subject_id: String,
    },
    Expired,
    Used,
    Unknown,
}

fn digest(token: &str) -> Vec<u8> {
    sha256(token.as_bytes()).to_vec()
}

/// A fresh token for a subject: 43 characters of `[A-Za-z0-9_-]` (Telegram allows
/// 64), of which only the digest is stored.
pub fn issue_link_token(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<(String, DateTime<Utc>)> {
    let token = b64url(&random_bytes::<32>());
    let expires = now + Duration::minutes(LINK_TOKEN_TTL_MINUTES);
    diesel::insert_into(telegram_link_tokens::table)
        .values((
            telegram_link_tokens::digest.eq(digest(&token)),
            telegram_link_tokens::tenant_id.eq(tenant_id),
            telegram_link_tokens::subject_id.eq(subject_id),
            telegram_link_tokens::expires_at.eq(expires.naive_utc()),
            telegram_link_tokens::created_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok((token, expires))
}

/// What a token is, without using it up (the bot asks the person to confirm first).
pub fn peek_link_token(
    conn: &mut DbConnection,
    token: &str,
    now: DateTime<Utc>,
) -> StoreResult<LinkToken> {
    if token.is_empty() || token.len() > 64 {
        return Ok(LinkToken::Unknown);
    }
    let row: Option<(String, String, NaiveDateTime, Option<NaiveDateTime>)> =
        telegram_link_tokens::table
            .find(digest(token))
            .select((
                telegram_link_tokens::tenant_id,
                telegram_link_tokens::subject_id,
                telegram_link_tokens::expires_at,
                telegram_link_tokens::consumed_at,
            ))
            .first(conn)
            .optional()?;
    Ok(match row {
        None => LinkToken::Unknown,
        Some((_, _, _, Some(_))) => LinkToken::Used,
        Some((_, _, expires, None)) if expires <= now.naive_utc() => LinkToken::Expired,
        Some((tenant_id, subject_id, _, None)) => LinkToken::Valid {
            tenant_id,
            subject_id,
        },
    })
}

/// Uses the token up and links the chat, atomically: of two confirmations racing,
/// exactly one links. Run inside the tenant's unit of work.
pub fn consume_and_link(
    conn: &mut DbConnection,
    token: &str,
    chat_id: i64,
    now: DateTime<Utc>,
) -> StoreResult<LinkToken> {
    let state = peek_link_token(conn, token, now)?;
    let LinkToken::Valid {
        tenant_id,
        subject_id,
    } = &state
    else {
        return Ok(state);
    };
    let taken = diesel::update(telegram_link_tokens::table.find(digest(token)))
        .filter(telegram_link_tokens::consumed_at.is_null())
        .filter(telegram_link_tokens::expires_at.gt(now.naive_utc()))
        .set(telegram_link_tokens::consumed_at.eq(now.naive_utc()))
        .execute(conn)?;
    if taken != 1 {
        return Ok(LinkToken::Used);
    }
    bind_chat(conn, tenant_id, subject_id, chat_id)?;
    let known = telegram_chat_directory::table
        .find((chat_id, tenant_id, subject_id))
        .count()
        .get_result::<i64>(conn)?;
    if known == 0 {
        diesel::insert_into(telegram_chat_directory::table)
            .values((
                telegram_chat_directory::chat_id.eq(chat_id),
                telegram_chat_directory::tenant_id.eq(tenant_id),
                telegram_chat_directory::subject_id.eq(subject_id),
                telegram_chat_directory::linked_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
    }
    Ok(state)
}

/// The (tenant, subject) pairs a chat is linked to, oldest first.
pub fn links_of_chat(conn: &mut DbConnection, chat_id: i64) -> StoreResult<Vec<(String, String)>> {
    Ok(telegram_chat_directory::table
        .filter(telegram_chat_directory::chat_id.eq(chat_id))
        .order((
            telegram_chat_directory::linked_at.asc(),
            telegram_chat_directory::tenant_id.asc(),
        ))
        .select((
            telegram_chat_directory::tenant_id,
            telegram_chat_directory::subject_id,
        ))
        .load(conn)?)
}

/// Whether the chat is linked to that subject: every callback is checked with this.
pub fn is_linked(
    conn: &mut DbConnection,
    chat_id: i64,
    tenant_id: &str,
    subject_id: &str,
) -> StoreResult<bool> {
    Ok(telegram_chat_directory::table
        .find((chat_id, tenant_id, subject_id))
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

/// Unlinks the chat from one subject. Run inside the tenant's unit of work.
pub fn unlink(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
    chat_id: i64,
) -> StoreResult<()> {
    diesel::delete(telegram_chats::table.find((tenant_id, subject_id, chat_id))).execute(conn)?;
    diesel::delete(telegram_chat_directory::table.find((chat_id, tenant_id, subject_id)))
        .execute(conn)?;
    Ok(())
}

/// The person wrote to the bot again: the chat works again for that tenant.
pub fn mark_chat_reachable(
    conn: &mut DbConnection,
    tenant_id: &str,
    chat_id: i64,
) -> StoreResult<usize> {
    Ok(diesel::update(telegram_chats::table)
        .filter(telegram_chats::tenant_id.eq(tenant_id))
        .filter(telegram_chats::chat_id.eq(chat_id))
        .filter(telegram_chats::unreachable_at.is_not_null())
        .set(telegram_chats::unreachable_at.eq(None::<NaiveDateTime>))
        .execute(conn)?)
}

/// A chat's chosen language and conversation state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatState {
    pub language: Option<String>,
    pub state: Option<String>,
}

pub fn chat_state(conn: &mut DbConnection, chat_id: i64) -> StoreResult<ChatState> {
    let row: Option<(Option<String>, Option<String>)> = telegram_chat_state::table
        .find(chat_id)
        .select((telegram_chat_state::language, telegram_chat_state::state))
        .first(conn)
        .optional()?;
    Ok(row
        .map(|(language, state)| ChatState { language, state })
        .unwrap_or_default())
}

pub fn put_chat_state(conn: &mut DbConnection, chat_id: i64, s: &ChatState) -> StoreResult<()> {
    let now = crate::now();
    let updated = diesel::update(telegram_chat_state::table.find(chat_id))
        .set((
            telegram_chat_state::language.eq(&s.language),
            telegram_chat_state::state.eq(&s.state),
            telegram_chat_state::updated_at.eq(now),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(telegram_chat_state::table)
            .values((
                telegram_chat_state::chat_id.eq(chat_id),
                telegram_chat_state::language.eq(&s.language),
                telegram_chat_state::state.eq(&s.state),
                telegram_chat_state::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Records an update id; `false` when it was handled before (a redelivery).
pub fn first_sight_of_update(conn: &mut DbConnection, update_id: i64) -> StoreResult<bool> {
    let seen = telegram_updates::table
        .find(update_id)
        .count()
        .get_result::<i64>(conn)?;
    if seen > 0 {
        return Ok(false);
    }
    match diesel::insert_into(telegram_updates::table)
        .values((
            telegram_updates::update_id.eq(update_id),
            telegram_updates::received_at.eq(crate::now()),
        ))
        .execute(conn)
    {
        Ok(_) => Ok(true),
        // Another server took the same redelivery at the same moment.
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Forgets update ids older than a day (Telegram gives up redelivering long before)
/// and link tokens a day past their expiry (kept that long so a late tap still gets
/// "expired" rather than "not recognised").
pub fn prune(conn: &mut DbConnection, now: DateTime<Utc>) -> StoreResult<usize> {
    let day_ago = (now - Duration::days(1)).naive_utc();
    let updates =
        diesel::delete(telegram_updates::table.filter(telegram_updates::received_at.lt(day_ago)))
            .execute(conn)?;
    let tokens = diesel::delete(
        telegram_link_tokens::table.filter(telegram_link_tokens::expires_at.lt(day_ago)),
    )
    .execute(conn)?;
    Ok(updates + tokens)
}

// ---- the tenant-owned record of bound chats ------------------------------------

/// Binds a chat to a subject (the bot does this after the person confirms).
pub fn bind_chat(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
    chat_id: i64,
) -> StoreResult<()> {
    let updated = diesel::update(telegram_chats::table.find((tenant_id, subject_id, chat_id)))
        .set(telegram_chats::unreachable_at.eq(None::<NaiveDateTime>))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(telegram_chats::table)
            .values((
                telegram_chats::tenant_id.eq(tenant_id),
                telegram_chats::subject_id.eq(subject_id),
                telegram_chats::chat_id.eq(chat_id),
                telegram_chats::linked_at.eq(crate::now()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The chats of a subject that the bot can still write to.
pub fn reachable_chats(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
) -> StoreResult<Vec<i64>> {
    Ok(telegram_chats::table
        .filter(telegram_chats::tenant_id.eq(tenant_id))
        .filter(telegram_chats::subject_id.eq(subject_id))
        .filter(telegram_chats::unreachable_at.is_null())
        .order(telegram_chats::linked_at.asc())
        .select(telegram_chats::chat_id)
        .load(conn)?)
}

/// The chat blocked the bot or was deactivated: not a withdrawal, only a channel
/// that no longer works until the person writes to the bot again.
pub fn mark_chat_unreachable(
    conn: &mut DbConnection,
    tenant_id: &str,
    chat_id: i64,
) -> StoreResult<usize> {
    Ok(diesel::update(telegram_chats::table)
        .filter(telegram_chats::tenant_id.eq(tenant_id))
        .filter(telegram_chats::chat_id.eq(chat_id))
        .filter(telegram_chats::unreachable_at.is_null())
        .set(telegram_chats::unreachable_at.eq(crate::now()))
        .execute(conn)?)
}
