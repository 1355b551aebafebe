-- As ../sqlite/0003: file transfers (PROTOCOL.md §5.7).
CREATE TABLE transfers (
    file_id    TEXT   PRIMARY KEY,
    owner_id   BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT   NOT NULL,
    target_id  BIGINT REFERENCES users(id) ON DELETE CASCADE,
    name       TEXT   NOT NULL,
    size       BIGINT NOT NULL,
    sha256     TEXT   NOT NULL,
    chunk_size BIGINT NOT NULL,
    accepted   BIGINT,
    complete   BIGINT NOT NULL DEFAULT 0,
    have       TEXT   NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX transfers_owner ON transfers(owner_id, expires_at);
CREATE INDEX transfers_target ON transfers(target_id) WHERE target_id IS NOT NULL;
CREATE INDEX transfers_expiry ON transfers(expires_at);
