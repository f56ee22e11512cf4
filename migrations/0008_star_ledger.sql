-- How far the engine has read the bot's Telegram Star ledger (getStarTransactions,
-- oldest first): every transaction before `next_offset` has been looked at, and each
-- Star payment among them that names an order has its `payments` row. One row.
CREATE TABLE star_ledger (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    next_offset  INTEGER NOT NULL CHECK (next_offset >= 0),
    updated_at   INTEGER NOT NULL
);
