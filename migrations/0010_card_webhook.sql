-- The CryptoCardy webhook each card's seed has registered (KIOSK_CRYPTOCARDY_WEBHOOK_URL
-- at the time): registered at the issue, or at the next start for cards issued before
-- the URL was set; re-registered (the old one deleted) when the URL changes.
ALTER TABLE cards ADD COLUMN webhook_id TEXT;
ALTER TABLE cards ADD COLUMN webhook_url TEXT;
