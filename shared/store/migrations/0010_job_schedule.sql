-- The background jobs' shared schedule and status (docs/workers.md): one row
-- per job, written under the job's lock by the worker that ran the cycle.
-- `control` is the operator's request (`cancelled`), written only by
-- `set_job_control`.
CREATE TABLE job_schedule (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    holder TEXT NOT NULL,
    next_run_ms INTEGER NOT NULL,
    last_run_ms INTEGER NOT NULL,
    last_success_ms INTEGER,
    last_error TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    runs INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    control TEXT NOT NULL DEFAULT '',
    updated_ms INTEGER NOT NULL
);
