-- Per-blob integrity and encryption facts, and progress of resumable admin jobs.
--
-- `blobs` is a side table keyed by the blob (backend_id, backend_key), so the
-- rows that reference blobs (segments, parts, intents) stay as they are. A row
-- may be written at plan time (the cipher) and again at commit (the sha256);
-- `prune_blobs` removes rows no segment, part or intent references any more.
-- It holds no bytes: the usage triggers do not look at it.

CREATE TABLE blobs (
    backend_id  TEXT NOT NULL,
    backend_key TEXT NOT NULL,
    -- hex SHA-256 of the blob's plaintext
    sha256      TEXT,
    -- id of the master key wrapping the DEK, or 'sse-c:<md5>'
    key_id      TEXT,
    wrapped_dek BLOB,
    -- the id bound into the AEAD associated data
    context     TEXT,
    -- ok | corrupt | quarantined
    state       TEXT NOT NULL DEFAULT 'ok',
    -- last integrity check
    checked_ms  INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (backend_id, backend_key)
) WITHOUT ROWID;
CREATE INDEX blobs_by_key_id ON blobs (key_id);
CREATE INDEX blobs_by_age ON blobs (created_ms);

-- Reference lookups by blob, for pruning.
CREATE INDEX segments_by_blob ON segments (backend_id, backend_key);
CREATE INDEX parts_by_blob ON parts (backend_id, backend_key);
CREATE INDEX intents_by_blob ON intents (backend_id, backend_key);

CREATE TABLE jobs_progress (
    name       TEXT PRIMARY KEY NOT NULL,
    -- running | paused | cancelled | done
    state      TEXT NOT NULL,
    cursor     TEXT NOT NULL DEFAULT '',
    done       INTEGER NOT NULL DEFAULT 0,
    total      INTEGER NOT NULL DEFAULT 0,
    errors     INTEGER NOT NULL DEFAULT 0,
    detail     TEXT NOT NULL DEFAULT '',
    updated_ms INTEGER NOT NULL
);
