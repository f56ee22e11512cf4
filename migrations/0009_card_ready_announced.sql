-- When the owner was told a card is funded and active. The follow loop and the webhook
-- receiver both may see the card become active; whichever claims this first (NULL → now)
-- sends the one message. Cards already past their funding were announced by the
-- follow loop of an earlier version.
ALTER TABLE cards ADD COLUMN ready_announced_at INTEGER;
UPDATE cards SET ready_announced_at = updated_at
    WHERE state IN ('active', 'frozen', 'terminated');
