-- Monthly traffic per backend (API requests, egress and ingress bytes), as the
-- data planes report it. Keyed by calendar month (`YYYY-MM`, UTC), so a new
-- month starts from zero without any reset job; old months stay for history.
--
-- Like backend_usage (0002), each report lands in one of 16 shards per
-- (backend, month), chosen at random, so concurrent reports from many data
-- planes do not serialize on one row; readers sum the shards.

CREATE TABLE monthly_usage (
    backend_id    TEXT NOT NULL,
    month         TEXT NOT NULL,
    shard         INTEGER NOT NULL,
    requests      INTEGER NOT NULL DEFAULT 0,
    egress_bytes  INTEGER NOT NULL DEFAULT 0,
    ingress_bytes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (backend_id, month, shard)
) WITHOUT ROWID;
