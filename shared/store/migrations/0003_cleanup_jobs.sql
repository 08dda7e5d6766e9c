-- Durable cleanup queue and dead letters.
--
-- The cleanup job claims rows for a lease (`claimed_until_ms`), so two
-- claimers never delete the same bytes at once and a crashed claimer's rows
-- become claimable again when the lease ends. A failed deletion is retried
-- after an exponential backoff (`next_attempt_ms`); after too many attempts the
-- row moves to `cleanup_dead_letter` for an operator to look at.
--
-- Dead-letter rows still name bytes on a backend, so they keep counting as
-- orphan bytes: moving a row is a DELETE from cleanup_queue (orphan -=) plus an
-- INSERT into cleanup_dead_letter (orphan +=), a net zero, in the style of
-- 0002_usage.sql (random shard per change).

ALTER TABLE cleanup_queue ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cleanup_queue ADD COLUMN next_attempt_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cleanup_queue ADD COLUMN claimed_until_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cleanup_queue ADD COLUMN last_error TEXT;

CREATE TABLE cleanup_dead_letter (
    id          INTEGER PRIMARY KEY,
    backend_id  TEXT NOT NULL,
    backend_key TEXT NOT NULL,
    length      INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL,
    last_error  TEXT,
    dead_ms     INTEGER NOT NULL
);

CREATE TRIGGER usage_dead_letter_insert AFTER INSERT ON cleanup_dead_letter BEGIN
    INSERT INTO backend_usage (backend_id, shard, orphan_bytes)
    VALUES (NEW.backend_id, abs(random() % 16), NEW.length)
    ON CONFLICT (backend_id, shard) DO UPDATE
    SET orphan_bytes = orphan_bytes + excluded.orphan_bytes;
END;

CREATE TRIGGER usage_dead_letter_delete AFTER DELETE ON cleanup_dead_letter BEGIN
    INSERT INTO backend_usage (backend_id, shard, orphan_bytes)
    VALUES (OLD.backend_id, abs(random() % 16), -OLD.length)
    ON CONFLICT (backend_id, shard) DO UPDATE
    SET orphan_bytes = orphan_bytes + excluded.orphan_bytes;
END;
