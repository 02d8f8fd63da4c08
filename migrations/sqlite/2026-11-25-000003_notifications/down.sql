DROP TABLE webhooks;
DROP TABLE suppressions;
DROP TABLE telegram_chats;
DROP TABLE subscriptions;
DROP TABLE templates;
DROP TABLE notification_attempts;
DROP TABLE notifications;
DROP TABLE notification_settings;
