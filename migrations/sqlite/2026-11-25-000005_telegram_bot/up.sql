-- The bot serves every tenant, so what it looks up before it knows the tenant is
-- installation-level (like api_key_directory): nothing here is tenant data beyond ids.

-- One-time tokens of t.me/<bot>?start=<token> links; only the SHA-256 is kept.
CREATE TABLE telegram_link_tokens (
    digest       BLOB      NOT NULL PRIMARY KEY,
    tenant_id    TEXT      NOT NULL REFERENCES tenants (id),
    subject_id   TEXT      NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    consumed_at  TIMESTAMP,
    created_at   TIMESTAMP NOT NULL
);

-- Which subjects (of which tenants) a chat is linked to: the bot's index into the
-- tenant-owned telegram_chats, written in the same transaction.
CREATE TABLE telegram_chat_directory (
    chat_id     BIGINT    NOT NULL,
    tenant_id   TEXT      NOT NULL REFERENCES tenants (id),
    subject_id  TEXT      NOT NULL,
    linked_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (chat_id, tenant_id, subject_id)
);

-- A chat's chosen language and its conversation state (what the numbered buttons of
-- the last menu stand for), so no separate storage file is needed.
CREATE TABLE telegram_chat_state (
    chat_id     BIGINT    NOT NULL PRIMARY KEY,
    language    TEXT,
    state       TEXT,
    updated_at  TIMESTAMP NOT NULL
);

-- Update ids already handled in webhook mode (Telegram may deliver one twice).
CREATE TABLE telegram_updates (
    update_id    BIGINT    NOT NULL PRIMARY KEY,
    received_at  TIMESTAMP NOT NULL
);
CREATE INDEX telegram_updates_received ON telegram_updates (received_at);
