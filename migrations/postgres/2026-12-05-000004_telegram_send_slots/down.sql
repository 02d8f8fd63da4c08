DROP TABLE telegram_send_slots;
