-- The reconciler (see docs/reconciler.md) merges each backend's listing, in
-- key order, against every catalog row that names a blob on that backend.
-- backend_key columns use the database's collation; the reconciler compares
-- and sorts them in byte order (COLLATE "C"), so these indexes do too.

CREATE INDEX segments_by_blob_c ON segments (backend_id, (backend_key COLLATE "C"));
CREATE INDEX parts_by_blob_c ON parts (backend_id, (backend_key COLLATE "C"));
CREATE INDEX intents_by_blob_c ON intents (backend_id, (backend_key COLLATE "C"));
CREATE INDEX cleanup_queue_by_blob_c ON cleanup_queue (backend_id, (backend_key COLLATE "C"));
CREATE INDEX cleanup_dead_letter_by_blob_c ON cleanup_dead_letter (backend_id, (backend_key COLLATE "C"));
-- For the point check before an orphan is queued.
CREATE INDEX cleanup_queue_by_blob ON cleanup_queue (backend_id, backend_key);
CREATE INDEX cleanup_dead_letter_by_blob ON cleanup_dead_letter (backend_id, backend_key);
