-- Background recompression of delta objects (see migrations/0008_delta_compact_objects.sql).
ALTER TABLE delta_decisions ADD COLUMN compacted_level INTEGER NOT NULL DEFAULT 0;
CREATE INDEX delta_decisions_by_compacted ON delta_decisions (decision, compacted_level, created_ms);
