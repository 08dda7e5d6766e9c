-- Delta compression (see docs/delta.md).
--
-- A deltaspace reference is an ordinary object in the hidden bucket
-- `.refs.<bucket>` under `<space>/<ref_id>` (cleanup, encryption and usage
-- apply as for any object); `delta_refs` adds what delta compression needs
-- to know of it. A reference is needed while any segment's blob has
-- `blobs.ref_id` = its id.

-- How a blob's bytes encode its segment: NULL (plain), 'zstd' or 'delta'.
ALTER TABLE blobs ADD COLUMN codec TEXT;
-- Bytes of the encoded form (before any sealing).
ALTER TABLE blobs ADD COLUMN encoded_len INTEGER;
-- For 'delta': the reference it decodes against.
ALTER TABLE blobs ADD COLUMN ref_id TEXT;
CREATE INDEX blobs_by_ref_id ON blobs (ref_id) WHERE ref_id IS NOT NULL;

CREATE TABLE delta_refs (
    ref_id       TEXT PRIMARY KEY NOT NULL,
    -- the user bucket and deltaspace it serves
    bucket       TEXT NOT NULL,
    space        TEXT NOT NULL,
    -- where its object lives: `.refs.<bucket>`, `<space>/<ref_id>`
    ref_bucket   TEXT NOT NULL,
    ref_key      TEXT NOT NULL,
    -- logical size and hex SHA-256 of its bytes
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    -- current | retired
    state        TEXT NOT NULL DEFAULT 'current',
    -- last handed out to a writer (freeing waits for a grace period after it)
    last_used_ms INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL
);
CREATE INDEX delta_refs_by_bucket ON delta_refs (bucket);
CREATE INDEX delta_refs_by_use ON delta_refs (last_used_ms);

CREATE TABLE deltaspaces (
    space          TEXT PRIMARY KEY NOT NULL,
    bucket         TEXT NOT NULL,
    current_ref_id TEXT,
    -- the last ratios (delta / object) in permille, oldest first, comma separated
    recent         TEXT NOT NULL DEFAULT '',
    -- the next eligible write becomes the new reference
    want_new_ref   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE delta_decisions (
    object_id     TEXT PRIMARY KEY NOT NULL,
    bucket        TEXT NOT NULL,
    -- reference | delta | passthrough
    decision      TEXT NOT NULL,
    reason        TEXT NOT NULL,
    ref_id        TEXT,
    logical_bytes INTEGER NOT NULL,
    stored_bytes  INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL
);
CREATE INDEX delta_decisions_by_bucket ON delta_decisions (bucket);
