-- Receipts are pushed to the sender until the sender acks them, like messages to their
-- recipient: a receipt pushed into a connection that silently died comes again at the next login.
ALTER TABLE messages ADD COLUMN receipt_seen INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_receipts_pending ON messages(sender_id, id)
    WHERE delivered_at IS NOT NULL AND receipt_seen = 0 AND recipient_id IS NOT NULL;
