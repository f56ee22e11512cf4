-- Kiosk's schema. Money is exact decimal TEXT (converted in src/store/codec.rs);
-- times are INTEGER milliseconds since the Unix epoch (UTC).

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,          -- Telegram user id
    username    TEXT,
    language    TEXT,                          -- chosen language code, NULL = from Telegram
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    blocked     INTEGER NOT NULL DEFAULT 0     -- 1 once Telegram says the bot was blocked
);

CREATE TABLE orders (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id              INTEGER NOT NULL,
    buyer_id             INTEGER NOT NULL,
    family               TEXT    NOT NULL,
    product_ref          TEXT    NOT NULL,     -- provider's product identity (JSON)
    product_title        TEXT    NOT NULL,
    recipient            TEXT    NOT NULL,     -- normalised recipient (JSON)
    quantity             INTEGER NOT NULL DEFAULT 1 CHECK (quantity > 0),
    provider             TEXT    NOT NULL,
    cost_amount          TEXT    NOT NULL,
    cost_currency        TEXT    NOT NULL,
    price_amount         TEXT    NOT NULL,
    price_currency       TEXT    NOT NULL,
    idempotency_key      TEXT    NOT NULL UNIQUE,
    provider_order_id    TEXT,
    status               TEXT    NOT NULL CHECK (status IN (
                             'awaiting_payment', 'paid', 'submitted', 'processing',
                             'completed', 'expired', 'failed', 'refunded',
                             'needs_attention')),
    failure_reason       TEXT,
    delivered_content    TEXT,
    invoice_message_id   INTEGER,
    admin_id             INTEGER,              -- set for an admin's /stars or /premium
    payment_deadline     INTEGER NOT NULL,
    fulfilment_deadline  INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX orders_by_status ON orders (status, id);
CREATE INDEX orders_by_buyer ON orders (buyer_id, id DESC);
CREATE UNIQUE INDEX orders_by_provider_order
    ON orders (provider, provider_order_id) WHERE provider_order_id IS NOT NULL;

CREATE TABLE order_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id     INTEGER NOT NULL REFERENCES orders (id),
    from_status  TEXT,                          -- NULL for the creating event
    to_status    TEXT    NOT NULL,
    actor        TEXT    NOT NULL,              -- engine | buyer:<id> | admin:<id> | …
    reason       TEXT    NOT NULL DEFAULT '',
    at           INTEGER NOT NULL
);
CREATE INDEX order_events_by_order ON order_events (order_id, id);

CREATE TABLE payments (
    id                          INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id                    INTEGER REFERENCES orders (id), -- NULL: matched no order
    buyer_id                    INTEGER NOT NULL,
    telegram_payment_charge_id  TEXT    NOT NULL UNIQUE,
    provider_payment_charge_id  TEXT,
    currency                    TEXT    NOT NULL,
    total_amount                TEXT    NOT NULL,  -- major units, exact decimal
    invoice_payload             TEXT    NOT NULL,
    refunded_at                 INTEGER,
    created_at                  INTEGER NOT NULL
);
CREATE INDEX payments_by_order ON payments (order_id);

CREATE TABLE dialogues (
    chat_id     INTEGER PRIMARY KEY,
    state       TEXT    NOT NULL,                -- JSON of bot::State
    updated_at  INTEGER NOT NULL
);

-- Provider webhook deliveries already applied, so a retried delivery changes nothing.
CREATE TABLE webhook_events (
    provider     TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (provider, event_id)
);
