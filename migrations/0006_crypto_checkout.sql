-- Buyer-paid crypto checkout (Cryptorefills): the buyer's country, chosen once for the
-- provider's catalog; the provider's own order state (shown in My orders in words);
-- the checkout handed to the buyer (address, coin amount, network, deadline as JSON),
-- so My orders can show it again while the order waits for the payment.
ALTER TABLE users ADD COLUMN country TEXT;
ALTER TABLE orders ADD COLUMN provider_state TEXT;
ALTER TABLE orders ADD COLUMN crypto_checkout TEXT;
