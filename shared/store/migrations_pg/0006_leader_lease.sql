-- Control-plane leadership (docs/leadership.md): one row, taken and renewed
-- by compare-and-swap in a transaction, with expiry on the database clock.
-- `term` grows by one at every change of holder. It is UNIQUE so that an
-- UPDATE of it takes the row's FOR UPDATE lock, which conflicts with the
-- FOR KEY SHARE every fenced write transaction holds on the row: a takeover
-- waits for the deposed leader's in-flight commits, and later ones see the
-- new term and fail. Renewals change only `expires_at` (FOR NO KEY UPDATE)
-- and never wait for commits.
CREATE TABLE cp_lease (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    url TEXT NOT NULL,
    term BIGINT NOT NULL UNIQUE,
    expires_at TIMESTAMPTZ NOT NULL
);
