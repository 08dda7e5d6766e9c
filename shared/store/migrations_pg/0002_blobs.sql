-- Per-blob integrity and encryption facts, and progress of resumable admin jobs
-- (see migrations/0005_blobs.sql). Column types and collations follow the
-- tables that reference blobs, so the joins of prune_blobs use their indexes.

CREATE TABLE blobs (
    backend_id  TEXT COLLATE "C" NOT NULL,
    backend_key TEXT NOT NULL,
    -- hex SHA-256 of the blob's plaintext
    sha256      TEXT,
    -- id of the master key wrapping the DEK, or 'sse-c:<md5>'
    key_id      TEXT COLLATE "C",
    wrapped_dek BYTEA,
    -- the id bound into the AEAD associated data
    context     TEXT,
    -- ok | corrupt | quarantined
    state       TEXT NOT NULL DEFAULT 'ok',
    -- last integrity check
    checked_ms  BIGINT NOT NULL DEFAULT 0,
    created_ms  BIGINT NOT NULL,
    PRIMARY KEY (backend_id, backend_key)
);
CREATE INDEX blobs_by_key_id ON blobs (key_id);
CREATE INDEX blobs_by_age ON blobs (created_ms);

-- Reference lookups by blob, for pruning.
CREATE INDEX segments_by_blob ON segments (backend_id, backend_key);
CREATE INDEX parts_by_blob ON parts (backend_id, backend_key);
CREATE INDEX intents_by_blob ON intents (backend_id, backend_key);

CREATE TABLE jobs_progress (
    name       TEXT COLLATE "C" PRIMARY KEY,
    -- running | paused | cancelled | done
    state      TEXT NOT NULL,
    cursor     TEXT NOT NULL DEFAULT '',
    done       BIGINT NOT NULL DEFAULT 0,
    total      BIGINT NOT NULL DEFAULT 0,
    errors     BIGINT NOT NULL DEFAULT 0,
    detail     TEXT NOT NULL DEFAULT '',
    updated_ms BIGINT NOT NULL
);
