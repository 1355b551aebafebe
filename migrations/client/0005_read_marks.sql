-- How far each conversation has been read. Unread counts are the received messages after the
-- mark, counted from the history itself: they survive restarts and cannot drift from it.
CREATE TABLE read_marks (
    conv   TEXT    PRIMARY KEY,           -- as messages.conv
    msg_id INTEGER NOT NULL               -- the newest message read
);

-- A store from before this table has no marks: what it holds counts as read, not as thousands
-- of unread messages after an upgrade.
INSERT INTO read_marks (conv, msg_id)
SELECT conv, MAX(msg_id) FROM messages WHERE msg_id IS NOT NULL GROUP BY conv;
