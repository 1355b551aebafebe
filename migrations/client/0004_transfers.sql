-- File transfers of this account, both directions (issue 7). `ranges` is the chunk map as JSON
-- pairs [[start, end], ...]: for downloads the bytes written to the .part file, for uploads the
-- bytes the server confirmed. `message` holds the chat body an image upload posts once complete.
CREATE TABLE transfers (
    file_id    TEXT PRIMARY KEY,
    direction  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    chat       TEXT NOT NULL,
    peer       TEXT NOT NULL,
    name       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    chunk_size INTEGER NOT NULL DEFAULT 0,
    state      TEXT NOT NULL,
    ranges     TEXT NOT NULL DEFAULT '[]',
    path       TEXT,
    accepted   INTEGER NOT NULL DEFAULT 0,
    error      TEXT,
    message    TEXT,
    ts         INTEGER NOT NULL
);
