-- Conveyor SQLite schema, version 1: one row per job, whatever its state.
--
-- state: scheduled | queued | active | retrying | succeeded | dead | cancelled
-- Times are epoch seconds (REAL) by the wall clock of the machine that owns the file.

CREATE TABLE IF NOT EXISTS conveyor_jobs (
    seq              INTEGER PRIMARY KEY,   -- enqueue order (FIFO tie-break)
    id               TEXT    NOT NULL UNIQUE,
    task             TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    payload          BLOB    NOT NULL,
    priority         INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 9),
    run_at           REAL    NOT NULL,       -- due time
    enqueued_at      REAL    NOT NULL,
    state            TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    deaths           INTEGER NOT NULL DEFAULT 0,  -- leases that expired while active
    token            TEXT,                   -- fencing token of the current lease
    lease_until      REAL,
    result           BLOB,
    expires_at       REAL,                   -- results are gone after this
    error_type       TEXT,
    error_message    TEXT,
    traceback        TEXT,
    progress         REAL,
    progress_message TEXT,
    finished_at      REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);

-- reserve: per queue, per priority, oldest due first
CREATE INDEX IF NOT EXISTS conveyor_jobs_ready
    ON conveyor_jobs (queue, priority, run_at, seq)
    WHERE state IN ('queued', 'scheduled', 'retrying');

-- recovery of expired leases
CREATE INDEX IF NOT EXISTS conveyor_jobs_leases
    ON conveyor_jobs (lease_until)
    WHERE state = 'active';

-- dead-letter listing; partial so the hot path never touches it
CREATE INDEX IF NOT EXISTS conveyor_jobs_dead
    ON conveyor_jobs (queue, seq)
    WHERE state = 'dead';

-- pruning of expired results
CREATE INDEX IF NOT EXISTS conveyor_jobs_expiry
    ON conveyor_jobs (expires_at)
    WHERE expires_at IS NOT NULL;
