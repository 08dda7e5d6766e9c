-- A completed multipart upload, remembered for a day so that a repeated
-- CompleteMultipartUpload (an SDK retry after a lost reply) answers with the
-- object it made instead of NoSuchUpload.
CREATE TABLE completed_uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    object_id TEXT NOT NULL,
    completed_ms BIGINT NOT NULL
);
CREATE INDEX completed_uploads_by_time ON completed_uploads (completed_ms);
