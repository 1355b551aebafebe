-- Natter server schema, version 1.
-- Usernames are unique by their ASCII-lowercase key; the display form keeps its case.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE,
    password_hash TEXT,                      -- NULL for guests
    is_guest      INTEGER NOT NULL DEFAULT 0,
    nickname      TEXT    NOT NULL DEFAULT '',
    motto         TEXT    NOT NULL DEFAULT '',
    phone         TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL           -- guests are purged once offline past the grace period
);

-- Tokens are 256 random bits; only their SHA-256 is stored.
CREATE TABLE sessions (
    token_hash BLOB    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    last_used  INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

-- One row per direction, so "my friends" is one index range.
CREATE TABLE friendships (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    friend_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    since     INTEGER NOT NULL,
    PRIMARY KEY (user_id, friend_id)
) WITHOUT ROWID;

CREATE TABLE friend_requests (
    from_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    to_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    message    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (from_id, to_id)
) WITHOUT ROWID;
CREATE INDEX friend_requests_to ON friend_requests(to_id);

-- Every chat message, private and square. Sender names are copied in so history outlives an
-- erased or purged account; sender_id keeps no foreign key for the same reason.
CREATE TABLE messages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    sender_id      INTEGER NOT NULL,
    sender_name    TEXT    NOT NULL,
    sender_guest   INTEGER NOT NULL,
    client_msg_id  TEXT    NOT NULL,
    conv_key       TEXT    NOT NULL,          -- 'square' or 'p:<low user id>:<high user id>'
    recipient_id   INTEGER,                   -- NULL for the square
    recipient_name TEXT,
    body           TEXT    NOT NULL,          -- JSON of natter_proto::MessageBody
    created_at     INTEGER NOT NULL,
    delivered_at   INTEGER                    -- set when the recipient acks
);
-- The client's message id is the idempotency key (per sender).
CREATE UNIQUE INDEX messages_dedup ON messages(sender_id, client_msg_id);
CREATE INDEX messages_conv ON messages(conv_key, id);
-- The offline queue: private messages not yet acked by their recipient.
CREATE INDEX messages_undelivered ON messages(recipient_id, id)
    WHERE delivered_at IS NULL AND recipient_id IS NOT NULL;

-- Pushes owed to a user who was offline (friend answers, removals, receipts), as JSON frames.
CREATE TABLE notices (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    payload    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX notices_user ON notices(user_id, id);
