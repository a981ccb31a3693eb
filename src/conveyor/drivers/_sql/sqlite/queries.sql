-- Queries of the SQLite driver, one per "-- name:" block.
-- Waiting states are always spelled state IN ('queued', 'scheduled', 'retrying') so
-- that SQLite sees the partial index conveyor_jobs_ready apply.

-- name: create_meta
CREATE TABLE IF NOT EXISTS conveyor_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- name: get_version
SELECT value FROM conveyor_meta WHERE key = 'schema_version';

-- name: set_version
INSERT INTO conveyor_meta (key, value) VALUES ('schema_version', ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: has_meta
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'conveyor_meta';

-- name: insert_job
-- params: id, task, queue, payload, priority, run_at, enqueued_at, state
INSERT INTO conveyor_jobs (id, task, queue, payload, priority, run_at, enqueued_at, state)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: reserve
-- params: lease_until, queue, now, limit. The IN list over priorities lets SQLite seek
-- each priority's due range in index order, so neither sorting nor skipping over
-- jobs that are not due yet. RETURNING order is unspecified: the caller sorts.
UPDATE conveyor_jobs
SET state = 'active', attempts = attempts + 1,
    token = lower(hex(randomblob(8))), lease_until = ?1
WHERE seq IN (
    SELECT seq FROM conveyor_jobs
    WHERE queue = ?2
      AND state IN ('queued', 'scheduled', 'retrying')
      AND priority IN (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
      AND run_at <= ?3
    ORDER BY priority, run_at, seq
    LIMIT ?4
)
RETURNING id, queue, payload, attempts, token, priority, deaths, run_at, seq;

-- name: recover_leases
-- params: now. Expired leases: due again at once, the death counted.
UPDATE conveyor_jobs
SET state = 'queued', deaths = deaths + 1, token = NULL, run_at = ?1
WHERE state = 'active' AND lease_until <= ?1;

-- name: next_lease_expiry
SELECT min(lease_until) FROM conveyor_jobs WHERE state = 'active';

-- name: prune_results
-- params: now, batch size. Bounded so one call never holds the write lock for long.
DELETE FROM conveyor_jobs WHERE seq IN (
    SELECT seq FROM conveyor_jobs WHERE expires_at <= ?1 LIMIT ?2
);

-- name: next_due
-- params: queue. The earliest due time among waiting jobs: one index seek per priority.
SELECT min((
    SELECT min(run_at) FROM conveyor_jobs
    WHERE queue = ?1
      AND state IN ('queued', 'scheduled', 'retrying')
      AND priority = p.column1
)) FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS p;

-- name: renew
-- params: lease_until, id, token, now
UPDATE conveyor_jobs SET lease_until = ?1
WHERE id = ?2 AND token = ?3 AND state = 'active' AND lease_until > ?4
RETURNING cancel_requested;

-- name: complete_succeeded
-- params: result, expires_at, finished_at, id, token
UPDATE conveyor_jobs
SET state = 'succeeded', result = ?1, expires_at = ?2, finished_at = ?3, token = NULL,
    error_type = NULL, error_message = NULL, traceback = NULL
WHERE id = ?4 AND token = ?5 AND state = 'active';

-- name: complete_forget
-- params: id, token. Succeeded with result_ttl <= 0: nothing is kept.
DELETE FROM conveyor_jobs WHERE id = ?1 AND token = ?2 AND state = 'active';

-- name: complete_finished
-- params: state (dead | cancelled), error_type, error_message, traceback, finished_at, id, token
UPDATE conveyor_jobs
SET state = ?1, error_type = ?2, error_message = ?3, traceback = ?4, finished_at = ?5,
    token = NULL
WHERE id = ?6 AND token = ?7 AND state = 'active';

-- name: complete_retry
-- params: run_at, error_type, error_message, traceback, id, token. The attempt stays counted.
UPDATE conveyor_jobs
SET state = 'retrying', run_at = ?1, error_type = ?2, error_message = ?3, traceback = ?4,
    token = NULL
WHERE id = ?5 AND token = ?6 AND state = 'active';

-- name: complete_requeue
-- params: state (scheduled | queued), run_at, id, token. SNOOZE and RELEASE: the attempt is
-- given back.
UPDATE conveyor_jobs
SET state = ?1, run_at = ?2, attempts = attempts - 1, token = NULL
WHERE id = ?3 AND token = ?4 AND state = 'active';

-- name: get_job
SELECT id, task, queue, state, attempts, priority, run_at, enqueued_at, payload, result,
       error_type, error_message, traceback, progress, progress_message, finished_at,
       cancel_requested
FROM conveyor_jobs
WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?2);

-- name: cancel_waiting
-- params: finished_at, id
UPDATE conveyor_jobs
SET state = 'cancelled', error_type = 'Cancelled', error_message = 'cancelled before it ran',
    traceback = '', finished_at = ?1, token = NULL
WHERE id = ?2 AND state IN ('queued', 'scheduled', 'retrying');

-- name: cancel_active
UPDATE conveyor_jobs SET cancel_requested = 1 WHERE id = ?1 AND state = 'active';

-- name: set_progress
UPDATE conveyor_jobs SET progress = ?1, progress_message = ?2 WHERE id = ?3;

-- name: list_dead
-- The dead letters of every queue, through their own partial index.
SELECT id, task, queue, state, attempts, priority, run_at, enqueued_at, payload, result,
       error_type, error_message, traceback, progress, progress_message, finished_at,
       cancel_requested
FROM conveyor_jobs
WHERE state = 'dead'
ORDER BY seq LIMIT :limit OFFSET :offset;

-- name: list_dead_in_queue
SELECT id, task, queue, state, attempts, priority, run_at, enqueued_at, payload, result,
       error_type, error_message, traceback, progress, progress_message, finished_at,
       cancel_requested
FROM conveyor_jobs
WHERE state = 'dead' AND queue = :queue
ORDER BY seq LIMIT :limit OFFSET :offset;

-- name: list_jobs
-- A scheduled job that is due counts as queued: :state/:alt name the stored states that
-- may match and :due says which side of now a scheduled job must be on.
SELECT id, task, queue, state, attempts, priority, run_at, enqueued_at, payload, result,
       error_type, error_message, traceback, progress, progress_message, finished_at,
       cancel_requested
FROM conveyor_jobs
WHERE state IN (:state, :alt)
  AND (state <> 'scheduled' OR (run_at <= :now) = :due)
  AND (:queue IS NULL OR queue = :queue)
  AND (expires_at IS NULL OR expires_at > :now)
ORDER BY seq LIMIT :limit OFFSET :offset;

-- name: retry_dead_all
UPDATE conveyor_jobs
SET state = 'queued', attempts = 0, deaths = 0, error_type = NULL, error_message = NULL,
    traceback = NULL, finished_at = NULL, token = NULL, run_at = :now
WHERE state = 'dead' AND (:queue IS NULL OR queue = :queue);

-- name: retry_dead_one
UPDATE conveyor_jobs
SET state = 'queued', attempts = 0, deaths = 0, error_type = NULL, error_message = NULL,
    traceback = NULL, finished_at = NULL, token = NULL, run_at = :now
WHERE id = :id AND state = 'dead' AND (:queue IS NULL OR queue = :queue);

-- name: purge
DELETE FROM conveyor_jobs
WHERE state IN (:state, :alt)
  AND (state <> 'scheduled' OR (run_at <= :now) = :due)
  AND (:queue IS NULL OR queue = :queue)
  AND (expires_at IS NULL OR expires_at > :now);

-- name: stats
SELECT queue,
       CASE WHEN state = 'scheduled' AND run_at <= :now THEN 'queued' ELSE state END AS st,
       count(*)
FROM conveyor_jobs
WHERE expires_at IS NULL OR expires_at > :now
GROUP BY queue, st;
