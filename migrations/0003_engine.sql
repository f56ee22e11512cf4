-- The order engine's bookkeeping.
--
-- `submit_started_at`: set (in the same statement as Paid → Submitted, or just before a
-- retried call) while a `place_order` call may be in flight, cleared when the provider
-- answered that nothing happened (a retryable error). A submitted order without a
-- provider order id and with this column set was interrupted mid-call: it is replayed
-- only where the provider is replay-safe, else reconciled first.
ALTER TABLE orders ADD COLUMN submit_started_at INTEGER;

-- Messages the engine owes someone, claimed before they are sent. A buyer's
-- announcement is claimed in the same transaction as the transition that causes it,
-- so only the task that won the transition sends it, and a restart never sends it
-- again (`sent_at` NULL after a restart = in doubt: the admins are told instead).
-- Admin alerts use the same table so that a stuck order alerts once, not every poll.
CREATE TABLE notices (
    key         TEXT    PRIMARY KEY,           -- order:<id>:<kind> | payment:<id>:<kind>
    order_id    INTEGER REFERENCES orders (id),
    claimed_at  INTEGER NOT NULL,
    sent_at     INTEGER,
    outcome     TEXT                           -- sent | failed: … | in_doubt
);
CREATE INDEX notices_unsent ON notices (sent_at) WHERE sent_at IS NULL;
