-- CryptoCardy cards, one row per card issued for a buyer. The row is written before the
-- issuing call (with the idempotency key that call carries), so an interrupted issue is
-- resumed with the same key instead of creating a second card.
-- The card's seed (its API credential) is stored only encrypted: an XChaCha20-Poly1305
-- nonce and ciphertext under a key derived from KIOSK_SECRET_KEY, bound to the row id and
-- the owner. PAN and CVV are never stored; only the last four digits.
CREATE TABLE cards (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id          INTEGER NOT NULL,          -- Telegram user id of the buyer
    provider_card_id  TEXT,                      -- CryptoCardy's card id, once known
    seed_nonce        BLOB,
    seed_ciphertext   BLOB,
    card_type         TEXT,                      -- visa | mastercard (NULL: provider's choice)
    asset             TEXT    NOT NULL,          -- funding asset (BTC, USDT-SOL, …)
    network           TEXT,                      -- funding chain, when known
    state             TEXT    NOT NULL CHECK (state IN (
                          'issuing', 'pending_top_up', 'active', 'frozen',
                          'terminated', 'issue_failed')),
    last4             TEXT,
    wallet_address    TEXT,                      -- where the buyer sends crypto (public)
    balance           TEXT,                      -- last known USD balance, exact decimal
    idempotency_key   TEXT    NOT NULL UNIQUE,
    failure           TEXT,                      -- why issuing failed
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    CHECK ((seed_nonce IS NULL) = (seed_ciphertext IS NULL))
);
CREATE INDEX cards_by_owner ON cards (owner_id, id DESC);
CREATE INDEX cards_by_state ON cards (state, id);
CREATE UNIQUE INDEX cards_by_provider_card
    ON cards (provider_card_id) WHERE provider_card_id IS NOT NULL;
