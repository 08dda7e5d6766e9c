-- Background recompression of delta references (see migrations/0007_delta_compact.sql).
ALTER TABLE delta_refs ADD COLUMN compacted_level INTEGER NOT NULL DEFAULT 0;
CREATE INDEX delta_refs_by_compacted ON delta_refs (compacted_level, created_ms);
