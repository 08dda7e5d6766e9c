-- Background recompression of delta references (workers' `delta-compact`):
-- the zstd level a reference was last recompressed at (0: as written on the
-- PUT path, never recompressed).
ALTER TABLE delta_refs ADD COLUMN compacted_level INTEGER NOT NULL DEFAULT 0;
CREATE INDEX delta_refs_by_compacted ON delta_refs (compacted_level, created_ms);
