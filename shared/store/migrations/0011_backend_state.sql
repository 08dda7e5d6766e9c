-- Persisted backend lifecycle (drain, removal). A backend without a row is
-- active. Placement reads this table, so a drain survives restarts of every
-- role and several control planes agree on it.

CREATE TABLE backend_states (
    backend_id TEXT PRIMARY KEY NOT NULL,
    -- active | draining | drained | removed
    state      TEXT NOT NULL,
    since_ms   INTEGER NOT NULL,
    changed_by TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;

-- Objects with a segment on one backend, in object-id order (drain, purge, rebalance).
CREATE INDEX segments_by_backend ON segments (backend_id, object_id);
