-- The face value a buyer chose for an open-value product (a Steam wallet top-up of
-- 500 RUB, a direct top-up of 10 USD): sent to the provider with the order.
ALTER TABLE orders ADD COLUMN face_amount TEXT;
ALTER TABLE orders ADD COLUMN face_currency TEXT;
