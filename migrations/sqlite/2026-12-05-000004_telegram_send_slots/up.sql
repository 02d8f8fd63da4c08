-- Telegram's sending limits, shared by every worker process: the earliest time the
-- bot's next message may go (chat_id 0) and the next message to each chat, in
-- microseconds on the database's clock. A send locks the bot's row first, so all
-- reservations of the installation are taken one after another (see
-- assent_core::send_rate). A registry table: Telegram limits the bot, not a tenant.
-- Chat rows not used for an hour are pruned by a periodic job.
CREATE TABLE telegram_send_slots (
    chat_id  BIGINT NOT NULL PRIMARY KEY,
    next_at  BIGINT NOT NULL
);
INSERT INTO telegram_send_slots (chat_id, next_at) VALUES (0, 0);
