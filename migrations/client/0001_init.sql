-- Natter client store, one database per account and server.

-- Everything sent and received. Outgoing messages exist here from the moment send_* accepts
-- them (msg_id NULL until the server stores them); the server's msg_id orders a conversation.
CREATE TABLE messages (
    local_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id        INTEGER UNIQUE,
    client_msg_id TEXT    NOT NULL,
    conv          TEXT    NOT NULL,           -- 'square' or 'u:<peer username, lowercase>'
    sender        TEXT    NOT NULL,
    sender_guest  INTEGER NOT NULL,
    recipient     TEXT,                       -- NULL for the square
    body          TEXT    NOT NULL,           -- JSON of natter_proto::MessageBody
    ts            INTEGER NOT NULL,           -- server time once stored, local time before
    state         TEXT    NOT NULL,           -- sending | sent | delivered | failed | received
    error         TEXT
);
CREATE UNIQUE INDEX messages_client ON messages(sender, client_msg_id);
CREATE INDEX messages_conv ON messages(conv, msg_id);

-- Messages accepted by send_* and not yet acknowledged by the server, in send order.
CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    client_msg_id TEXT    NOT NULL UNIQUE,
    target        TEXT    NOT NULL,           -- JSON of natter_proto::Target
    body          TEXT    NOT NULL,           -- JSON of natter_proto::MessageBody
    created_at    INTEGER NOT NULL
);

-- Last known friends and their presence (shown at once, refreshed at login).
CREATE TABLE friends (
    username TEXT    PRIMARY KEY,
    nickname TEXT    NOT NULL,
    motto    TEXT    NOT NULL,
    is_guest INTEGER NOT NULL,
    online   INTEGER NOT NULL
);

-- Small state: the session token, the own profile.
CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
