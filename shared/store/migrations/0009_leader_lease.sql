-- Control-plane leadership (docs/leadership.md): one row, taken and renewed
-- by compare-and-swap. `term` grows by one at every change of holder; it is
-- UNIQUE so that changing it is a key update, which the write fence's
-- `FOR KEY SHARE` (on PostgreSQL) waits for.
CREATE TABLE cp_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    url TEXT NOT NULL,
    term INTEGER NOT NULL UNIQUE,
    expires_ms INTEGER NOT NULL
);
