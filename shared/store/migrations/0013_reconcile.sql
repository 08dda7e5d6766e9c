-- The reconciler (see docs/reconciler.md) merges each backend's listing, in
-- key order, against every catalog row that names a blob on that backend.
-- Segments, parts and intents already have (backend_id, backend_key)
-- indexes (0005_blobs.sql); the cleanup queue and its dead letters get
-- theirs here, so each source is read in key order from an index.

CREATE INDEX cleanup_queue_by_blob ON cleanup_queue (backend_id, backend_key);
CREATE INDEX cleanup_dead_letter_by_blob ON cleanup_dead_letter (backend_id, backend_key);
