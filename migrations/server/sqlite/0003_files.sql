-- File transfers (issue 7, PROTOCOL.md §5.7). The bytes live in <data_dir>/files/<file_id>;
-- this row says what they are, who may touch them, and which ranges are stored.
CREATE TABLE transfers (
    file_id    TEXT    PRIMARY KEY,           -- 128 random bits, base64url: unguessable
    owner_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,              -- 'file' or 'image'
    target_id  INTEGER REFERENCES users(id) ON DELETE CASCADE, -- NULL: the square (images only)
    name       TEXT    NOT NULL,              -- sanitised
    size       INTEGER NOT NULL,
    sha256     TEXT    NOT NULL,              -- lowercase hex, as offered
    chunk_size INTEGER NOT NULL,              -- suggested to both sides
    accepted   INTEGER,                       -- NULL unanswered, 1 accepted (images: always 1)
    complete   INTEGER NOT NULL DEFAULT 0,    -- every byte stored and the SHA-256 verified
    -- Stored byte ranges, merged, as JSON [[start, end], ...]. Written only after the bytes
    -- are, so after a crash it may claim less than the file holds, never more.
    have       TEXT    NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX transfers_owner ON transfers(owner_id, expires_at);
-- Offers still waiting for an answer are pushed again at each login of their receiver.
CREATE INDEX transfers_target ON transfers(target_id) WHERE target_id IS NOT NULL;
CREATE INDEX transfers_expiry ON transfers(expires_at);
