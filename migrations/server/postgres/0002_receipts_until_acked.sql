-- As ../sqlite/0002: receipts are pushed until the sender acks them.
ALTER TABLE messages ADD COLUMN receipt_seen BIGINT NOT NULL DEFAULT 0;
CREATE INDEX messages_receipts_pending ON messages(sender_id, id)
    WHERE delivered_at IS NOT NULL AND receipt_seen = 0 AND recipient_id IS NOT NULL;
