-- Background recompression of delta objects (workers' `delta-compact`): the
-- zstd level an object's delta was last re-encoded at (0: as written on the
-- PUT path, never re-encoded).
ALTER TABLE delta_decisions ADD COLUMN compacted_level INTEGER NOT NULL DEFAULT 0;
CREATE INDEX delta_decisions_by_compacted ON delta_decisions (decision, compacted_level, created_ms);
