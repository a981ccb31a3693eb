-- Queries of the PostgreSQL driver, one per "-- name:" block ($1, $2, ... parameters).
-- {jobs}, {meta}, {reserve}, {channel} and {job_columns} are filled in by the driver.
-- NOTIFY payloads are "<seconds until due> <queue>" or "cancel <job id>"; they are sent
-- at commit, so a job enqueued in the caller's transaction wakes workers only once it is
-- visible.

-- name: has_meta
SELECT to_regclass($1) IS NOT NULL;

-- name: get_version
SELECT value FROM {meta} WHERE key = 'schema_version';

-- name: set_version
INSERT INTO {meta} (key, value) VALUES ('schema_version', $1)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: now
SELECT extract(epoch FROM clock_timestamp())::double precision;

-- name: enqueue
-- params: ids, tasks, queues, payloads, priorities, delays (seconds from the database's
-- now; an ETA was turned into a delay by the producer). Written with CAST(... AS ...)
-- rather than :: so that SQLAlchemy's text() can run it as well.
WITH new AS (
    SELECT n.id, n.task, n.queue, n.payload, n.priority, n.delay, n.ord
    FROM unnest(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS text[]),
                CAST($4 AS bytea[]), CAST($5 AS smallint[]), CAST($6 AS double precision[]))
         WITH ORDINALITY AS n(id, task, queue, payload, priority, delay, ord)
), inserted AS (
    INSERT INTO {jobs} (id, task, queue, payload, priority, run_at, state)
    SELECT id, task, queue, payload, priority,
           now() + make_interval(secs => greatest(delay, 0)),
           CASE WHEN delay > 0 THEN 'scheduled' ELSE 'queued' END
    FROM new
    ORDER BY ord
)
SELECT pg_notify({channel}, greatest(min(delay), 0)::text || ' ' || queue)
FROM new
GROUP BY queue;

-- name: reserve
SELECT id, queue, payload, attempts, token, priority, deaths, due_in
FROM {reserve}($1::text[], $2::integer, $3::double precision);

-- name: renew
-- params: ids, tokens, lease seconds
UPDATE {jobs} j SET lease_until = now() + make_interval(secs => $3)
FROM unnest($1::text[], $2::text[]) AS h(id, token)
WHERE j.id = h.id AND j.token = h.token AND j.state = 'active' AND j.lease_until > now()
RETURNING j.id, j.cancel_requested;

-- name: complete
-- params: ids, tokens, codes, results, seconds, error types, messages, tracebacks.
-- code 0: succeeded, keep nothing (deleted); otherwise an OutcomeKind: 1 succeeded,
-- 2 retry, 3 snooze, 4 dead, 5 cancelled, 6 release. seconds: result TTL (1), delay
-- (2, 3, 6) or how long a cancelled job is kept (5). Returns the ids that held their
-- lease (fencing) with their tokens, and a row with a NULL id per queue that got work back.
WITH o AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::bytea[],
                         $5::double precision[], $6::text[], $7::text[], $8::text[])
        AS o(id, token, code, result, secs, error_type, error_message, traceback)
), forgotten AS (
    DELETE FROM {jobs} j USING o
    WHERE o.code = 0 AND j.id = o.id AND j.token = o.token AND j.state = 'active'
    RETURNING o.id, o.token
), updated AS (
    UPDATE {jobs} j SET
        state = CASE o.code WHEN 1 THEN 'succeeded' WHEN 2 THEN 'retrying'
                            WHEN 4 THEN 'dead' WHEN 5 THEN 'cancelled'
                            ELSE CASE WHEN o.secs > 0 THEN 'scheduled' ELSE 'queued' END END,
        attempts = CASE WHEN o.code IN (3, 6) THEN j.attempts - 1 ELSE j.attempts END,
        run_at = CASE WHEN o.code IN (2, 3, 6) THEN now() + make_interval(secs => o.secs)
                      ELSE j.run_at END,
        result = CASE WHEN o.code = 1 THEN o.result ELSE j.result END,
        expires_at = CASE WHEN o.code IN (1, 5) THEN now() + make_interval(secs => o.secs)
                          ELSE j.expires_at END,
        finished_at = CASE WHEN o.code IN (1, 4, 5) THEN now() ELSE j.finished_at END,
        -- a success clears the error of an earlier attempt
        error_type = CASE WHEN o.code IN (2, 4, 5) THEN o.error_type
                          WHEN o.code = 1 THEN NULL ELSE j.error_type END,
        error_message = CASE WHEN o.code IN (2, 4, 5) THEN o.error_message
                             WHEN o.code = 1 THEN NULL ELSE j.error_message END,
        traceback = CASE WHEN o.code IN (2, 4, 5) THEN o.traceback
                         WHEN o.code = 1 THEN NULL ELSE j.traceback END,
        token = NULL,
        lease_until = NULL
    FROM o
    WHERE o.code <> 0 AND j.id = o.id AND j.token = o.token AND j.state = 'active'
    RETURNING o.id, o.token, j.queue, o.code, o.secs
)
SELECT id, token FROM forgotten
UNION ALL
SELECT id, token FROM updated
UNION ALL
SELECT NULL, NULL FROM (
    SELECT pg_notify({channel}, min(secs)::text || ' ' || queue)
    FROM updated WHERE code IN (2, 3, 6) GROUP BY queue
) AS woken;

-- name: get_job
SELECT {job_columns} FROM {jobs}
WHERE id = $1 AND (expires_at IS NULL OR expires_at > now());

-- name: cancel
-- params: id, seconds a cancelled job is kept. A waiting job is cancelled; an active one
-- gets a request its worker sees at the next lease renewal, and a NOTIFY "cancel <id>"
-- (at commit) makes the worker renew at once.
WITH waiting AS (
    UPDATE {jobs}
    SET state = 'cancelled', error_type = 'Cancelled', error_message = 'cancelled before it ran',
        traceback = '', finished_at = now(), token = NULL,
        expires_at = now() + make_interval(secs => $2)
    WHERE id = $1 AND state IN ('queued', 'scheduled', 'retrying')
    RETURNING 'cancelled'::text AS what
), active AS (
    UPDATE {jobs} SET cancel_requested = true
    WHERE id = $1 AND state = 'active'
    RETURNING id, 'requested'::text AS what
)
SELECT what FROM waiting
UNION ALL
SELECT a.what FROM active a, LATERAL (SELECT pg_notify({channel}, 'cancel ' || a.id)) n;

-- name: set_progress
UPDATE {jobs} SET progress = $2, progress_message = $3 WHERE id = $1;

-- name: list_jobs
-- params: state, alt, due, queue (NULL: all), limit, offset. A scheduled job that is due
-- counts as queued.
SELECT {job_columns} FROM {jobs}
WHERE state IN ($1, $2)
  AND (state <> 'scheduled' OR (run_at <= now()) = $3)
  AND ($4::text IS NULL OR queue = $4)
  AND (expires_at IS NULL OR expires_at > now())
ORDER BY seq LIMIT $5 OFFSET $6;

-- name: list_dead
SELECT {job_columns} FROM {jobs}
WHERE state = 'dead'
ORDER BY seq LIMIT $1 OFFSET $2;

-- name: list_dead_in_queue
SELECT {job_columns} FROM {jobs}
WHERE state = 'dead' AND queue = $1
ORDER BY seq LIMIT $2 OFFSET $3;

-- name: retry_dead_all
-- params: queue (NULL: all)
WITH retried AS (
    UPDATE {jobs}
    SET state = 'queued', attempts = 0, deaths = 0, error_type = NULL, error_message = NULL,
        traceback = NULL, finished_at = NULL, token = NULL, run_at = now()
    WHERE state = 'dead' AND ($1::text IS NULL OR queue = $1)
    RETURNING queue
), woken AS (
    SELECT pg_notify({channel}, '0 ' || queue) FROM retried GROUP BY queue
)
SELECT (SELECT count(*) FROM retried)::integer, (SELECT count(*) FROM woken)::integer;

-- name: retry_dead_ids
-- params: queue (NULL: any), ids
WITH retried AS (
    UPDATE {jobs}
    SET state = 'queued', attempts = 0, deaths = 0, error_type = NULL, error_message = NULL,
        traceback = NULL, finished_at = NULL, token = NULL, run_at = now()
    WHERE id = ANY($2::text[]) AND state = 'dead' AND ($1::text IS NULL OR queue = $1)
    RETURNING queue
), woken AS (
    SELECT pg_notify({channel}, '0 ' || queue) FROM retried GROUP BY queue
)
SELECT (SELECT count(*) FROM retried)::integer, (SELECT count(*) FROM woken)::integer;

-- name: purge
-- params: state, alt, due, queue (NULL: all)
DELETE FROM {jobs}
WHERE state IN ($1, $2)
  AND (state <> 'scheduled' OR (run_at <= now()) = $3)
  AND ($4::text IS NULL OR queue = $4)
  AND (expires_at IS NULL OR expires_at > now());

-- name: stats
SELECT queue,
       CASE WHEN state = 'scheduled' AND run_at <= now() THEN 'queued' ELSE state END AS st,
       count(*)::integer
FROM {jobs}
WHERE expires_at IS NULL OR expires_at > now()
GROUP BY 1, 2;

-- name: prune
-- params: batch size. Expired results and cancelled jobs past their retention; rows
-- someone else holds are left for the next round.
WITH doomed AS (
    SELECT seq FROM {jobs}
    WHERE expires_at <= now()
    ORDER BY expires_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
DELETE FROM {jobs} j USING doomed WHERE j.seq = doomed.seq;
