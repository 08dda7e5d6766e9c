-- Per-backend usage counters for placement.
--
-- Design: the counters are maintained by triggers on the rows that hold bytes,
-- so every statement that adds or removes such a row (commit_object,
-- commit_part, complete_upload, delete_object, abort_upload, ack_cleanup, intent
-- insert/delete, and anything added later) updates them in the same
-- transaction, and they stay exact under concurrency and overwrites:
--
--   segments and parts rows  -> bytes_used (+length) and objects (+1 per blob)
--   cleanup_queue rows        -> orphan_bytes (bytes queued for deletion but
--                                still on the backend until ack_cleanup)
--   intents rows              -> reserved_bytes (their size_hint)
--
-- Moving a segment into the cleanup queue is a DELETE from segments (used -=)
-- plus an INSERT into cleanup_queue (orphan +=); acknowledging the cleanup is a
-- DELETE from cleanup_queue (orphan -=). Parts of a multipart upload occupy
-- their backend like segments do; completing an upload deletes the parts rows
-- and inserts the same blobs as segments, a net zero.
--
-- To keep writers off a single hot row, each change lands in one of 16 shards
-- per backend, chosen at random; readers sum the shards (backend_usage() is one
-- GROUP BY over at most 16 rows per backend). Counters may transiently be
-- negative in one shard; only the sums are meaningful.

ALTER TABLE intents ADD COLUMN size_hint INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cleanup_queue ADD COLUMN length INTEGER NOT NULL DEFAULT 0;

CREATE TABLE backend_usage (
    backend_id     TEXT NOT NULL,
    shard          INTEGER NOT NULL,
    bytes_used     INTEGER NOT NULL DEFAULT 0,
    orphan_bytes   INTEGER NOT NULL DEFAULT 0,
    reserved_bytes INTEGER NOT NULL DEFAULT 0,
    objects        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (backend_id, shard)
) WITHOUT ROWID;

-- Existing data: everything goes to shard 0. Cleanup rows queued before this
-- migration have no recorded length and count as 0 orphan bytes.
INSERT INTO backend_usage (backend_id, shard, bytes_used, objects, reserved_bytes)
SELECT backend_id, 0, SUM(bytes), SUM(blobs), 0 FROM (
    SELECT backend_id, length AS bytes, 1 AS blobs FROM segments
    UNION ALL
    SELECT backend_id, size AS bytes, 1 AS blobs FROM parts
) GROUP BY backend_id;

CREATE TRIGGER usage_segment_insert AFTER INSERT ON segments BEGIN
    INSERT INTO backend_usage (backend_id, shard, bytes_used, objects)
    VALUES (NEW.backend_id, abs(random() % 16), NEW.length, 1)
    ON CONFLICT (backend_id, shard) DO UPDATE
    SET bytes_used = bytes_used + excluded.bytes_used, objects = objects + excluded.objects;
END;

CREATE TRIGGER usage_segment_delete AFTER DELETE ON segments BEGIN
    INSERT INTO backend_usage (backend_id, shard, bytes_used, objects)
    VALUES (OLD.backend_id, abs(random() % 16), -OLD.length, -1)
    ON CONFLICT (backend_id, shard) DO UPDATE
    SET bytes_used = bytes_used + excluded.bytes_used, objects = objects + excluded.objects;
END;

CREATE TRIGGER usage_part_insert AFTER INSERT ON parts BEGIN
    INSERT INTO backend_usage (backend_id, shard, bytes_used, objects)
    VALUES (NEW.backend_id, abs(random() % 16), NEW.size, 1)
    ON CONFLICT (backend_id, shard) DO UPDATE
    SET bytes_used = bytes_used + excluded.bytes_used, objects = objects + excluded.objects;
END;

CREATE TRIGGER usage_part_delete AFTER DELETE ON parts BEGIN
    INSERT INTO backend_usage (backend_id, shard, bytes_used, objects)
    VALUES (OLD.backend_id, abs(random() % 16), -OLD.size, -1)
    ON CONFLICT (backend_id, shard) DO UPDATE
    SET bytes_used = bytes_used + excluded.bytes_used, objects = objects + excluded.objects;
END;

CREATE TRIGGER usage_cleanup_insert AFTER INSERT ON cleanup_queue BEGIN
    INSERT INTO backend_usage (backend_id, shard, orphan_bytes)
    VALUES (NEW.backend_id, abs(random() % 16), NEW.length)
    ON CONFLICT (backend_id, shard) DO UPDATE
    SET orphan_bytes = orphan_bytes + excluded.orphan_bytes;
END;

CREATE TRIGGER usage_cleanup_delete AFTER DELETE ON cleanup_queue BEGIN
    INSERT INTO backend_usage (backend_id, shard, orphan_bytes)
    VALUES (OLD.backend_id, abs(random() % 16), -OLD.length)
    ON CONFLICT (backend_id, shard) DO UPDATE
    SET orphan_bytes = orphan_bytes + excluded.orphan_bytes;
END;

CREATE TRIGGER usage_intent_insert AFTER INSERT ON intents WHEN NEW.size_hint <> 0 BEGIN
    INSERT INTO backend_usage (backend_id, shard, reserved_bytes)
    VALUES (NEW.backend_id, abs(random() % 16), NEW.size_hint)
    ON CONFLICT (backend_id, shard) DO UPDATE
    SET reserved_bytes = reserved_bytes + excluded.reserved_bytes;
END;

CREATE TRIGGER usage_intent_delete AFTER DELETE ON intents WHEN OLD.size_hint <> 0 BEGIN
    INSERT INTO backend_usage (backend_id, shard, reserved_bytes)
    VALUES (OLD.backend_id, abs(random() % 16), -OLD.size_hint)
    ON CONFLICT (backend_id, shard) DO UPDATE
    SET reserved_bytes = reserved_bytes + excluded.reserved_bytes;
END;
