-- Strata metadata catalog. Text columns use SQLite's default BINARY collation,
-- so keys compare in UTF-8 byte order, as S3 lists them.

CREATE TABLE credentials (
    access_key_id TEXT PRIMARY KEY NOT NULL,
    secret        TEXT NOT NULL,
    unrestricted  INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL
);

CREATE TABLE buckets (
    name       TEXT PRIMARY KEY NOT NULL,
    owner      TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE objects (
    bucket              TEXT NOT NULL REFERENCES buckets(name),
    key                 TEXT NOT NULL,
    object_id           TEXT NOT NULL UNIQUE,
    size                INTEGER NOT NULL,
    etag                TEXT NOT NULL,
    content_type        TEXT,
    content_encoding    TEXT,
    content_disposition TEXT,
    content_language    TEXT,
    cache_control       TEXT,
    expires             TEXT,
    user_metadata       TEXT NOT NULL DEFAULT '{}',
    checksums           TEXT NOT NULL DEFAULT '{}',
    parts_count         INTEGER NOT NULL DEFAULT 0,
    last_modified_ms    INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;

CREATE TABLE segments (
    object_id   TEXT NOT NULL REFERENCES objects(object_id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    backend_id  TEXT NOT NULL,
    backend_key TEXT NOT NULL,
    length      INTEGER NOT NULL,
    PRIMARY KEY (object_id, seq)
) WITHOUT ROWID;

CREATE TABLE intents (
    intent_id   TEXT PRIMARY KEY NOT NULL,
    object_id   TEXT NOT NULL,
    backend_id  TEXT NOT NULL,
    backend_key TEXT NOT NULL,
    bucket      TEXT NOT NULL,
    key         TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE INDEX intents_by_age ON intents (created_ms);

CREATE TABLE uploads (
    upload_id           TEXT PRIMARY KEY NOT NULL,
    bucket              TEXT NOT NULL REFERENCES buckets(name),
    key                 TEXT NOT NULL,
    size                INTEGER NOT NULL DEFAULT 0,
    etag                TEXT NOT NULL DEFAULT '',
    content_type        TEXT,
    content_encoding    TEXT,
    content_disposition TEXT,
    content_language    TEXT,
    cache_control       TEXT,
    expires             TEXT,
    user_metadata       TEXT NOT NULL DEFAULT '{}',
    checksums           TEXT NOT NULL DEFAULT '{}',
    parts_count         INTEGER NOT NULL DEFAULT 0,
    last_modified_ms    INTEGER NOT NULL DEFAULT 0,
    initiated_ms        INTEGER NOT NULL
);
CREATE INDEX uploads_by_key ON uploads (bucket, key, upload_id);

CREATE TABLE parts (
    upload_id        TEXT NOT NULL REFERENCES uploads(upload_id) ON DELETE CASCADE,
    part_number      INTEGER NOT NULL,
    etag             TEXT NOT NULL,
    size             INTEGER NOT NULL,
    last_modified_ms INTEGER NOT NULL,
    backend_id       TEXT NOT NULL,
    backend_key      TEXT NOT NULL,
    checksums        TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;

CREATE TABLE cleanup_queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    backend_id  TEXT NOT NULL,
    backend_key TEXT NOT NULL,
    enqueued_ms INTEGER NOT NULL
);
