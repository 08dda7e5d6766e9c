-- The breaker state each data plane last reported for each backend, so that
-- jobs in any process (replication in the worker role) share one view of
-- backend health. One row per (backend, reporter); `unhealthy_since_ms` is
-- when that reporter first reported the backend not closed (open or
-- half-open) without a closed report since, and NULL while it is closed.
-- Rows of reporters that stopped reporting are ignored by readers (they
-- look at `reported_ms`) and pruned after a day.

CREATE TABLE backend_health (
    backend_id         TEXT NOT NULL,
    reporter           TEXT NOT NULL,
    state              TEXT NOT NULL,
    unhealthy_since_ms INTEGER,
    reported_ms        INTEGER NOT NULL,
    PRIMARY KEY (backend_id, reporter)
) WITHOUT ROWID;
