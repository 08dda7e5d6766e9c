-- Strata metadata catalog on PostgreSQL: the schema of the SQLite migrations
-- 0001-0004 in one step. Keys and bucket names use COLLATE "C", so they
-- compare in UTF-8 byte order, as S3 lists them. Integers are BIGINT.

CREATE TABLE credentials (
    access_key_id TEXT PRIMARY KEY,
    secret        TEXT NOT NULL,
    unrestricted  BOOLEAN NOT NULL,
    created_ms    BIGINT NOT NULL
);

CREATE TABLE buckets (
    name       TEXT COLLATE "C" PRIMARY KEY,
    owner      TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE objects (
    bucket              TEXT COLLATE "C" NOT NULL REFERENCES buckets(name),
    key                 TEXT COLLATE "C" NOT NULL,
    object_id           TEXT COLLATE "C" NOT NULL UNIQUE,
    size                BIGINT NOT NULL,
    etag                TEXT NOT NULL,
    content_type        TEXT,
    content_encoding    TEXT,
    content_disposition TEXT,
    content_language    TEXT,
    cache_control       TEXT,
    expires             TEXT,
    user_metadata       TEXT NOT NULL DEFAULT '{}',
    checksums           TEXT NOT NULL DEFAULT '{}',
    parts_count         BIGINT NOT NULL DEFAULT 0,
    last_modified_ms    BIGINT NOT NULL,
    PRIMARY KEY (bucket, key)
);

-- Copies share this table: segment i of copy c has seq = c * 100000 + i.
CREATE TABLE segments (
    object_id   TEXT COLLATE "C" NOT NULL REFERENCES objects(object_id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    backend_id  TEXT COLLATE "C" NOT NULL,
    backend_key TEXT NOT NULL,
    length      BIGINT NOT NULL,
    PRIMARY KEY (object_id, seq)
);

CREATE TABLE intents (
    intent_id   TEXT PRIMARY KEY,
    object_id   TEXT NOT NULL,
    backend_id  TEXT COLLATE "C" NOT NULL,
    backend_key TEXT NOT NULL,
    bucket      TEXT COLLATE "C" NOT NULL,
    key         TEXT COLLATE "C" NOT NULL,
    created_ms  BIGINT NOT NULL,
    size_hint   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX intents_by_age ON intents (created_ms, intent_id);

CREATE TABLE uploads (
    upload_id           TEXT COLLATE "C" PRIMARY KEY,
    bucket              TEXT COLLATE "C" NOT NULL REFERENCES buckets(name),
    key                 TEXT COLLATE "C" NOT NULL,
    size                BIGINT NOT NULL DEFAULT 0,
    etag                TEXT NOT NULL DEFAULT '',
    content_type        TEXT,
    content_encoding    TEXT,
    content_disposition TEXT,
    content_language    TEXT,
    cache_control       TEXT,
    expires             TEXT,
    user_metadata       TEXT NOT NULL DEFAULT '{}',
    checksums           TEXT NOT NULL DEFAULT '{}',
    parts_count         BIGINT NOT NULL DEFAULT 0,
    last_modified_ms    BIGINT NOT NULL DEFAULT 0,
    initiated_ms        BIGINT NOT NULL
);
CREATE INDEX uploads_by_key ON uploads (bucket, key, upload_id);

CREATE TABLE parts (
    upload_id        TEXT COLLATE "C" NOT NULL REFERENCES uploads(upload_id) ON DELETE CASCADE,
    part_number      BIGINT NOT NULL,
    etag             TEXT NOT NULL,
    size             BIGINT NOT NULL,
    last_modified_ms BIGINT NOT NULL,
    backend_id       TEXT COLLATE "C" NOT NULL,
    backend_key      TEXT NOT NULL,
    checksums        TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (upload_id, part_number)
);

CREATE TABLE cleanup_queue (
    id               BIGSERIAL PRIMARY KEY,
    backend_id       TEXT COLLATE "C" NOT NULL,
    backend_key      TEXT NOT NULL,
    enqueued_ms      BIGINT NOT NULL,
    length           BIGINT NOT NULL DEFAULT 0,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT NOT NULL DEFAULT 0,
    claimed_until_ms BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT
);
CREATE INDEX cleanup_due ON cleanup_queue (next_attempt_ms, claimed_until_ms, id);

CREATE TABLE cleanup_dead_letter (
    id          BIGINT PRIMARY KEY,
    backend_id  TEXT COLLATE "C" NOT NULL,
    backend_key TEXT NOT NULL,
    length      BIGINT NOT NULL DEFAULT 0,
    attempts    BIGINT NOT NULL,
    last_error  TEXT,
    dead_ms     BIGINT NOT NULL
);

-- Monthly traffic per backend; see the SQLite 0004_monthly_usage.sql. Each
-- report lands in one shard per (backend, month); add_monthly_usage picks one
-- shard per call and updates backends in id order, so concurrent reports can
-- block each other briefly but never deadlock.
CREATE TABLE monthly_usage (
    backend_id    TEXT COLLATE "C" NOT NULL,
    month         TEXT COLLATE "C" NOT NULL,
    shard         INTEGER NOT NULL,
    requests      BIGINT NOT NULL DEFAULT 0,
    egress_bytes  BIGINT NOT NULL DEFAULT 0,
    ingress_bytes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (backend_id, month, shard)
);

-- Per-backend usage counters (semantics of the SQLite 0002_usage.sql).
--
-- SQLite's random shards of one counter row would deadlock here: PostgreSQL
-- runs writers concurrently, and two transactions that upsert the same shards
-- of two backends in opposite orders wait on each other. So triggers only ever
-- INSERT a delta row (no row is ever updated by a writer, so writers never
-- wait on each other); readers sum the deltas per backend, and
-- backend_usage() folds them into one row per backend from time to time with
-- one DELETE ... RETURNING / INSERT statement, which keeps every total exact.
CREATE TABLE usage_delta (
    id             BIGSERIAL PRIMARY KEY,
    backend_id     TEXT COLLATE "C" NOT NULL,
    bytes_used     BIGINT NOT NULL DEFAULT 0,
    orphan_bytes   BIGINT NOT NULL DEFAULT 0,
    reserved_bytes BIGINT NOT NULL DEFAULT 0,
    objects        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX usage_delta_by_backend ON usage_delta (backend_id);

-- segments and parts rows -> bytes_used and objects
CREATE FUNCTION usage_segment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO usage_delta (backend_id, bytes_used, objects) VALUES (NEW.backend_id, NEW.length, 1);
        RETURN NEW;
    END IF;
    INSERT INTO usage_delta (backend_id, bytes_used, objects) VALUES (OLD.backend_id, -OLD.length, -1);
    RETURN OLD;
END $$;

CREATE FUNCTION usage_part() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO usage_delta (backend_id, bytes_used, objects) VALUES (NEW.backend_id, NEW.size, 1);
        RETURN NEW;
    END IF;
    INSERT INTO usage_delta (backend_id, bytes_used, objects) VALUES (OLD.backend_id, -OLD.size, -1);
    RETURN OLD;
END $$;

-- cleanup_queue and cleanup_dead_letter rows -> orphan_bytes
CREATE FUNCTION usage_orphan() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.length <> 0 THEN
            INSERT INTO usage_delta (backend_id, orphan_bytes) VALUES (NEW.backend_id, NEW.length);
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.length <> 0 THEN
        INSERT INTO usage_delta (backend_id, orphan_bytes) VALUES (OLD.backend_id, -OLD.length);
    END IF;
    RETURN OLD;
END $$;

-- intents rows -> reserved_bytes
CREATE FUNCTION usage_intent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.size_hint <> 0 THEN
            INSERT INTO usage_delta (backend_id, reserved_bytes) VALUES (NEW.backend_id, NEW.size_hint);
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.size_hint <> 0 THEN
        INSERT INTO usage_delta (backend_id, reserved_bytes) VALUES (OLD.backend_id, -OLD.size_hint);
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER usage_segments AFTER INSERT OR DELETE ON segments
    FOR EACH ROW EXECUTE FUNCTION usage_segment();
CREATE TRIGGER usage_parts AFTER INSERT OR DELETE ON parts
    FOR EACH ROW EXECUTE FUNCTION usage_part();
CREATE TRIGGER usage_cleanup AFTER INSERT OR DELETE ON cleanup_queue
    FOR EACH ROW EXECUTE FUNCTION usage_orphan();
CREATE TRIGGER usage_dead_letter AFTER INSERT OR DELETE ON cleanup_dead_letter
    FOR EACH ROW EXECUTE FUNCTION usage_orphan();
CREATE TRIGGER usage_intents AFTER INSERT OR DELETE ON intents
    FOR EACH ROW EXECUTE FUNCTION usage_intent();
