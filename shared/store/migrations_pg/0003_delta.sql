-- Delta compression (see migrations/0006_delta.sql).

ALTER TABLE blobs ADD COLUMN codec TEXT;
ALTER TABLE blobs ADD COLUMN encoded_len BIGINT;
ALTER TABLE blobs ADD COLUMN ref_id TEXT COLLATE "C";
CREATE INDEX blobs_by_ref_id ON blobs (ref_id) WHERE ref_id IS NOT NULL;

CREATE TABLE delta_refs (
    ref_id       TEXT COLLATE "C" PRIMARY KEY,
    bucket       TEXT COLLATE "C" NOT NULL,
    space        TEXT COLLATE "C" NOT NULL,
    ref_bucket   TEXT COLLATE "C" NOT NULL,
    ref_key      TEXT COLLATE "C" NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    -- current | retired
    state        TEXT NOT NULL DEFAULT 'current',
    last_used_ms BIGINT NOT NULL,
    created_ms   BIGINT NOT NULL
);
CREATE INDEX delta_refs_by_bucket ON delta_refs (bucket);
CREATE INDEX delta_refs_by_use ON delta_refs (last_used_ms);

CREATE TABLE deltaspaces (
    space          TEXT COLLATE "C" PRIMARY KEY,
    bucket         TEXT COLLATE "C" NOT NULL,
    current_ref_id TEXT COLLATE "C",
    recent         TEXT NOT NULL DEFAULT '',
    want_new_ref   BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE delta_decisions (
    object_id     TEXT COLLATE "C" PRIMARY KEY,
    bucket        TEXT COLLATE "C" NOT NULL,
    decision      TEXT NOT NULL,
    reason        TEXT NOT NULL,
    ref_id        TEXT COLLATE "C",
    logical_bytes BIGINT NOT NULL,
    stored_bytes  BIGINT NOT NULL,
    created_ms    BIGINT NOT NULL
);
CREATE INDEX delta_decisions_by_bucket ON delta_decisions (bucket);
