-- Queries of the MySQL/MariaDB driver, one per "-- name:" block (%s parameters, escaped
-- by the client). {jobs}, {meta}, {reserve}, {complete} and {job_columns} are filled in by
-- the driver. Times are UTC: UTC_TIMESTAMP(6), never NOW(), whatever the session's zone.

-- name: has_meta
SELECT COUNT(*) FROM information_schema.tables
WHERE table_schema = DATABASE() AND table_name = %s;

-- name: get_version
SELECT `value` FROM {meta} WHERE `key` = 'schema_version';

-- name: set_version
-- params: version, version. Not "= VALUES(`value`)": MySQL 8.0.20+ deprecates that, and
-- MariaDB has no "AS new" row alias to replace it with.
INSERT INTO {meta} (`key`, `value`) VALUES ('schema_version', %s)
ON DUPLICATE KEY UPDATE `value` = %s;

-- name: lock
SELECT GET_LOCK(%s, %s);

-- name: unlock
SELECT RELEASE_LOCK(%s);

-- name: now
SELECT TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6)) / 1000000;

-- name: enqueue_head
-- followed by one enqueue_row per job, joined by commas: one statement per batch
INSERT INTO {jobs} (id, task, queue, payload, priority, run_at, enqueued_at, state)
VALUES;

-- name: enqueue_row
-- params: id, task, queue, payload, priority, delay (microseconds), state
(%s, %s, %s, %s, %s, TIMESTAMPADD(MICROSECOND, %s, UTC_TIMESTAMP(6)), UTC_TIMESTAMP(6), %s);

-- name: reserve
-- params: queues (JSON array), limit, lease seconds, token prefix
CALL {reserve}(%s, %s, %s, %s);

-- name: complete
-- params: outcomes (JSON, see the procedure)
CALL {complete}(%s);

-- name: renew
-- params: lease seconds; then "IN (...)" lists of ids and of tokens are appended. A token
-- ("<random>.<seq>") belongs to one lease of one job, so matching both lists is exact.
-- Single-table statements by id only: see the reserve procedure for why.
UPDATE {jobs}
SET lease_until = TIMESTAMPADD(MICROSECOND, ROUND(%s * 1000000), UTC_TIMESTAMP(6))
WHERE state = 'active' AND lease_until > UTC_TIMESTAMP(6) AND id IN;

-- name: held
-- The leases that still hold, after a renew; the same lists are appended.
SELECT id, cancel_requested FROM {jobs}
WHERE state = 'active' AND lease_until > UTC_TIMESTAMP(6) AND id IN;

-- name: get_job
SELECT {job_columns} FROM {jobs}
WHERE id = %s AND (expires_at IS NULL OR expires_at > UTC_TIMESTAMP(6));

-- name: cancel_waiting
-- params: seconds a cancelled job is kept, id
UPDATE {jobs}
SET state = 'cancelled', error_type = 'Cancelled', error_message = 'cancelled before it ran',
    traceback = '', finished_at = UTC_TIMESTAMP(6), token = NULL,
    expires_at = TIMESTAMPADD(MICROSECOND, ROUND(%s * 1000000), UTC_TIMESTAMP(6))
WHERE id = %s AND waiting = 1;

-- name: cancel_active
UPDATE {jobs} SET cancel_requested = 1 WHERE id = %s AND state = 'active';

-- name: set_progress
UPDATE {jobs} SET progress = %s, progress_message = %s WHERE id = %s;

-- name: list_jobs
-- params: state, alt, due, queue, queue, limit, offset. A scheduled job that is due counts
-- as queued.
SELECT {job_columns} FROM {jobs}
WHERE state IN (%s, %s)
  AND (state <> 'scheduled' OR (run_at <= UTC_TIMESTAMP(6)) = %s)
  AND (%s IS NULL OR queue = %s)
  AND (expires_at IS NULL OR expires_at > UTC_TIMESTAMP(6))
ORDER BY seq LIMIT %s OFFSET %s;

-- name: list_dead
SELECT {job_columns} FROM {jobs}
WHERE state = 'dead'
ORDER BY seq LIMIT %s OFFSET %s;

-- name: list_dead_in_queue
SELECT {job_columns} FROM {jobs}
WHERE state = 'dead' AND queue = %s
ORDER BY seq LIMIT %s OFFSET %s;

-- name: retry_dead_all
-- params: queue, queue (NULL: all)
UPDATE {jobs}
SET state = 'queued', attempts = 0, deaths = 0, error_type = NULL, error_message = NULL,
    traceback = NULL, finished_at = NULL, token = NULL, run_at = UTC_TIMESTAMP(6)
WHERE state = 'dead' AND (%s IS NULL OR queue = %s);

-- name: retry_dead_ids
-- params: queue, queue (NULL: any); then an "IN (...)" list of ids is appended
UPDATE {jobs}
SET state = 'queued', attempts = 0, deaths = 0, error_type = NULL, error_message = NULL,
    traceback = NULL, finished_at = NULL, token = NULL, run_at = UTC_TIMESTAMP(6)
WHERE state = 'dead' AND (%s IS NULL OR queue = %s) AND id IN;

-- name: purge
-- params: state, alt, due, queue, queue
DELETE FROM {jobs}
WHERE state IN (%s, %s)
  AND (state <> 'scheduled' OR (run_at <= UTC_TIMESTAMP(6)) = %s)
  AND (%s IS NULL OR queue = %s)
  AND (expires_at IS NULL OR expires_at > UTC_TIMESTAMP(6));

-- name: stats
SELECT queue,
       CASE WHEN state = 'scheduled' AND run_at <= UTC_TIMESTAMP(6) THEN 'queued'
            ELSE state END AS st,
       COUNT(*)
FROM {jobs}
WHERE expires_at IS NULL OR expires_at > UTC_TIMESTAMP(6)
GROUP BY queue, st;

-- name: prune_pick
-- params: batch size. Expired results and cancelled jobs past their retention; rows
-- someone else holds are left for the next round. In a transaction with prune_delete.
SELECT seq FROM {jobs}
WHERE expires_at <= UTC_TIMESTAMP(6)
ORDER BY expires_at
LIMIT %s
FOR UPDATE SKIP LOCKED;

-- name: prune_delete
-- params: seq of one row prune_pick took (run once per row, in its transaction). By the
-- primary key alone, so it touches only a row this transaction holds already and never
-- waits: "seq IN (...)" over much of the table is a full scan that locks every row.
DELETE FROM {jobs} WHERE seq = %s;
