DROP TABLE telegram_updates;
DROP TABLE telegram_chat_state;
DROP TABLE telegram_chat_directory;
DROP TABLE telegram_link_tokens;
