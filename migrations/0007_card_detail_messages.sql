-- Chat messages that show a card's full details (PAN, CVV, expiry) and must be deleted
-- from the buyer's chat when their time is up. Only where the message is and when it
-- goes: never its text. A row outlives a restart, so a deletion interrupted by one
-- still happens when the bot starts again.
CREATE TABLE card_detail_messages (
    chat_id     INTEGER NOT NULL,
    message_id  INTEGER NOT NULL,
    delete_at   INTEGER NOT NULL,          -- Unix milliseconds (UTC)
    attempts    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, message_id)
);
CREATE INDEX card_detail_messages_due ON card_detail_messages (delete_at);
