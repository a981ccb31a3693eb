-- Conveyor PostgreSQL schema, version 1: one row per job, whatever its state.
--
-- Placeholders: {jobs} and {meta} are the (schema-qualified) tables, {px} the table
-- prefix, {reserve} the reserve function, {channel} the NOTIFY channel (a literal).
-- state: scheduled | queued | active | retrying | succeeded | dead | cancelled
-- Times are timestamptz, always by the database's clock (now()).

CREATE TABLE IF NOT EXISTS {meta} (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE IF NOT EXISTS {jobs} (
    seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- FIFO tie-break
    id               text        NOT NULL UNIQUE,
    task             text        NOT NULL,
    queue            text        NOT NULL,
    payload          bytea       NOT NULL,
    priority         smallint    NOT NULL CHECK (priority BETWEEN 0 AND 9),
    run_at           timestamptz NOT NULL,             -- due time
    enqueued_at      timestamptz NOT NULL DEFAULT now(),
    state            text        NOT NULL CHECK (state IN ('scheduled', 'queued', 'active',
                         'retrying', 'succeeded', 'dead', 'cancelled')),
    attempts         integer     NOT NULL DEFAULT 0,
    deaths           integer     NOT NULL DEFAULT 0,   -- leases that expired while active
    token            text,                             -- fencing token of the current lease
    lease_until      timestamptz,
    result           bytea,
    expires_at       timestamptz,                      -- pruned after this
    error_type       text,
    error_message    text,
    traceback        text,
    progress         double precision,
    progress_message text,
    finished_at      timestamptz,
    cancel_requested boolean     NOT NULL DEFAULT false
);

-- reserve: per queue, per priority, oldest due first
CREATE INDEX IF NOT EXISTS "{px}jobs_ready" ON {jobs} (queue, priority, run_at, seq)
    WHERE state IN ('queued', 'scheduled', 'retrying');

-- recovery of expired leases
CREATE INDEX IF NOT EXISTS "{px}jobs_leases" ON {jobs} (lease_until)
    WHERE state = 'active';

-- dead-letter listing
CREATE INDEX IF NOT EXISTS "{px}jobs_dead" ON {jobs} (queue, seq)
    WHERE state = 'dead';

-- pruning of expired results and cancelled jobs
CREATE INDEX IF NOT EXISTS "{px}jobs_expiry" ON {jobs} (expires_at)
    WHERE expires_at IS NOT NULL;

-- Reserve up to p_limit due jobs from p_queues, in the order listed, in one call:
-- first put jobs whose lease expired back (their death counted, other workers told),
-- then take each queue's due jobs by priority, due time and enqueue order, skipping
-- rows another worker is taking (jobs due within the next millisecond count as due, so
-- jobs meant to run together do). Returns the jobs, sorted; and, when fewer than
-- p_limit were due (or p_limit = 0, a mere check), a last row with id NULL whose
-- due_in is the seconds until the next waiting job or lease expiry (NULL: none).
CREATE OR REPLACE FUNCTION {reserve}(p_queues text[], p_limit integer, p_lease double precision)
RETURNS TABLE (id text, queue text, payload bytea, attempts integer, token text,
               priority smallint, deaths integer, due_in double precision)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_left integer := p_limit;
    v_taken integer;
    v_queue text;
    v_next timestamptz;
BEGIN
    IF EXISTS (SELECT 1 FROM {jobs} j WHERE j.state = 'active' AND j.lease_until <= now()) THEN
        WITH expired AS (
            SELECT j.seq FROM {jobs} j
            WHERE j.state = 'active' AND j.lease_until <= now()
            ORDER BY j.lease_until
            LIMIT 1000
            FOR UPDATE SKIP LOCKED
        ), recovered AS (
            UPDATE {jobs} j
            SET state = 'queued', deaths = j.deaths + 1, token = NULL, run_at = j.lease_until
            FROM expired
            WHERE j.seq = expired.seq
            RETURNING j.queue
        )
        SELECT count(*) INTO v_taken FROM (
            SELECT pg_notify({channel}, '0 ' || r.queue) FROM recovered r GROUP BY r.queue
        ) woken;
    END IF;

    FOREACH v_queue IN ARRAY p_queues LOOP
        EXIT WHEN v_left <= 0;
        RETURN QUERY
            WITH picked AS (
                SELECT j.seq FROM {jobs} j
                WHERE j.queue = v_queue
                  AND j.state IN ('queued', 'scheduled', 'retrying')
                  AND j.run_at <= now() + interval '1 millisecond'
                ORDER BY j.priority, j.run_at, j.seq
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            ), taken AS (
                UPDATE {jobs} j
                SET state = 'active', attempts = j.attempts + 1,
                    token = md5(random()::text || j.seq::text),
                    lease_until = now() + make_interval(secs => p_lease)
                FROM picked
                WHERE j.seq = picked.seq
                RETURNING j.id, j.queue, j.payload, j.attempts, j.token, j.priority, j.deaths,
                          j.run_at, j.seq
            )
            SELECT t.id, t.queue, t.payload, t.attempts, t.token, t.priority, t.deaths,
                   NULL::double precision
            FROM taken t
            ORDER BY t.priority, t.run_at, t.seq;
        GET DIAGNOSTICS v_taken = ROW_COUNT;
        v_left := v_left - v_taken;
    END LOOP;

    IF v_left > 0 OR p_limit = 0 THEN
        SELECT min(n) INTO v_next FROM (
            SELECT (SELECT j.run_at FROM {jobs} j
                    WHERE j.queue = q.name AND j.priority = p.pr
                      AND j.state IN ('queued', 'scheduled', 'retrying')
                    ORDER BY j.run_at LIMIT 1) AS n
            FROM unnest(p_queues) AS q(name), generate_series(0, 9) AS p(pr)
            UNION ALL
            SELECT min(j.lease_until) FROM {jobs} j WHERE j.state = 'active'
        ) nexts;
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::bytea, NULL::integer, NULL::text,
                            NULL::smallint, NULL::integer,
                            extract(epoch FROM v_next - clock_timestamp())::double precision;
    END IF;
END
$fn$;
