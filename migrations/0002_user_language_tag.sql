-- The language tag Telegram reports for a user (`ru`, `en-GB`), so messages sent
-- outside a conversation (deliveries, refunds, broadcasts) use the buyer's language.
ALTER TABLE users ADD COLUMN telegram_language TEXT;
