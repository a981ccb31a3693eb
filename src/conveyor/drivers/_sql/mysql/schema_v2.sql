-- Conveyor MySQL/MariaDB schema, version 2: the same tables; the two procedures again.
--
-- * reserve: group_concat_max_len is raised by an IF, not by SET ... = GREATEST(@@...,
--   n): on MySQL that GREATEST is a DECIMAL, which SET refuses (error 1232; MariaDB
--   takes it), so version 1 migrated on MySQL 8+ but every reserve failed there.
-- * complete: a job that succeeds after failed attempts no longer keeps the error of
--   the last failure (error_type, error_message and traceback are cleared).
-- * both: parameters and variables that hold names, tokens and error texts are utf8mb4,
--   like the columns, whatever the database's default character set (in a latin1
--   database, version 1 failed on a queue name or an error message outside latin1).
--
-- Placeholders and statement ends as in schema_v1.sql. Re-runnable: each procedure is
-- dropped if it exists and created again.

DROP PROCEDURE IF EXISTS {reserve};

DELIMITER //

-- Reserve up to p_limit due jobs from p_queues (a JSON array), in the order listed, in
-- one call: first put jobs whose lease expired back (their death counted), then take each
-- queue's due jobs by priority, due time and enqueue order, skipping rows another worker
-- is taking (jobs due within the next millisecond count as due, so jobs meant to run
-- together do). Every job taken gets the token "<p_token>.<seq>". Returns the jobs taken
-- and, when fewer than p_limit were due (or p_limit = 0, a mere check), a last row with
-- id NULL whose due_in is the seconds until the next waiting job or lease expiry.
--
-- Rows are chosen by a SELECT ... FOR UPDATE SKIP LOCKED and changed by a single-table
-- UPDATE of exactly those rows: a multi-table UPDATE (a join with the chosen rows) would
-- wait on rows that open transactions are inserting, such as jobs enqueued in a caller's
-- transaction. All in one transaction (READ COMMITTED, set by the driver): a deadlock
-- victim leaves nothing half taken and can call again.
CREATE PROCEDURE {reserve}(IN p_queues LONGTEXT CHARACTER SET utf8mb4, IN p_limit INT,
                           IN p_lease DOUBLE,
                           IN p_token VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin)
BEGIN
    DECLARE v_left INT DEFAULT p_limit;
    DECLARE v_i INT DEFAULT 0;
    DECLARE v_count INT DEFAULT JSON_LENGTH(p_queues);
    DECLARE v_queue VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_list LONGTEXT;
    DECLARE v_until DATETIME(6);
    DECLARE v_next DATETIME(6) DEFAULT NULL;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION
    BEGIN
        ROLLBACK;
        RESIGNAL;
    END;

    -- an IF: on MySQL, GREATEST(@@group_concat_max_len, n) is a DECIMAL, which SET
    -- refuses (error 1232)
    IF @@session.group_concat_max_len < 1048576 THEN
        SET SESSION group_concat_max_len = 1048576;
    END IF;
    START TRANSACTION;

    SELECT GROUP_CONCAT(seq) INTO v_list FROM (
        SELECT seq FROM {jobs}
        WHERE state = 'active' AND lease_until <= UTC_TIMESTAMP(6)
        ORDER BY lease_until
        LIMIT 1000
        FOR UPDATE SKIP LOCKED
    ) AS expired;
    IF v_list IS NOT NULL THEN
        SET @conveyor_sql = CONCAT(
            'UPDATE {jobs} SET state = ''queued'', deaths = deaths + 1, token = NULL, ',
            'run_at = lease_until WHERE state = ''active'' AND seq IN (', v_list, ')');
        PREPARE conveyor_stmt FROM @conveyor_sql;
        EXECUTE conveyor_stmt;
        DEALLOCATE PREPARE conveyor_stmt;
    END IF;

    SET v_until = TIMESTAMPADD(MICROSECOND, ROUND(p_lease * 1000000), UTC_TIMESTAMP(6));
    SET @conveyor_token = p_token, @conveyor_until = v_until;
    WHILE v_i < v_count AND v_left > 0 DO
        SET v_queue = JSON_UNQUOTE(JSON_EXTRACT(p_queues, CONCAT('$[', v_i, ']')));
        SET v_list = NULL;
        SELECT GROUP_CONCAT(seq) INTO v_list FROM (
            SELECT seq FROM {jobs}
            WHERE queue = v_queue AND waiting = 1
              AND run_at <= TIMESTAMPADD(MICROSECOND, 1000, UTC_TIMESTAMP(6))
            ORDER BY priority, run_at, seq
            LIMIT v_left
            FOR UPDATE SKIP LOCKED
        ) AS picked;
        IF v_list IS NOT NULL THEN
            SET @conveyor_sql = CONCAT(
                'UPDATE {jobs} SET state = ''active'', attempts = attempts + 1, ',
                'token = CONCAT(?, ''.'', seq), lease_until = ? ',
                'WHERE waiting = 1 AND seq IN (', v_list, ')');
            PREPARE conveyor_stmt FROM @conveyor_sql;
            EXECUTE conveyor_stmt USING @conveyor_token, @conveyor_until;
            SET v_left = v_left - ROW_COUNT();
            DEALLOCATE PREPARE conveyor_stmt;
        END IF;
        SET v_i = v_i + 1;
    END WHILE;

    COMMIT;

    IF v_left > 0 OR p_limit = 0 THEN
        SELECT MIN(n) INTO v_next FROM (
            SELECT (SELECT j.run_at FROM {jobs} j
                    WHERE j.queue = q.name AND j.waiting = 1 AND j.priority = p.pr
                    ORDER BY j.run_at LIMIT 1) AS n
            FROM JSON_TABLE(p_queues, '$[*]' COLUMNS (
                     name VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$'
                 )) AS q
            CROSS JOIN JSON_TABLE('[0,1,2,3,4,5,6,7,8,9]', '$[*]' COLUMNS (
                     pr INT PATH '$'
                 )) AS p
            UNION ALL
            SELECT MIN(lease_until) FROM {jobs} WHERE state = 'active'
        ) AS nexts;
    END IF;

    SELECT id, queue, payload, attempts, token, priority, deaths,
           TIMESTAMPDIFF(MICROSECOND, '1970-01-01', run_at) AS run_us, seq,
           NULL AS due_in
    FROM {jobs}
    WHERE state = 'active' AND lease_until = v_until AND token LIKE CONCAT(p_token, '.%')
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), v_next) / 1000000
    FROM DUAL
    WHERE v_left > 0 OR p_limit = 0;
END //

DELIMITER ;

DROP PROCEDURE IF EXISTS {complete};

DELIMITER //

-- Apply a batch of outcomes, given as a JSON array of
-- [index, id, token, code, seconds, result (base64) | null, error type, message, traceback].
-- code 0: succeeded, keep nothing (deleted); otherwise an OutcomeKind: 1 succeeded,
-- 2 retry, 3 snooze, 4 dead, 5 cancelled, 6 release. seconds: result TTL (1), delay
-- (2, 3, 6) or how long a cancelled job is kept (5). Only outcomes whose token still
-- holds the lease change anything (fencing); a success clears the error of an earlier
-- attempt. Returns one row: their indexes, as
-- "i,j,...,". One single-row statement per outcome, by the job's id (see reserve for why
-- not a join), in one transaction.
CREATE PROCEDURE {complete}(IN p_outcomes LONGTEXT CHARACTER SET utf8mb4)
BEGIN
    DECLARE v_done INT DEFAULT 0;
    DECLARE v_i INT;
    DECLARE v_id VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_token VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_code INT;
    DECLARE v_secs DOUBLE;
    DECLARE v_result LONGTEXT;
    DECLARE v_type VARCHAR(255) CHARACTER SET utf8mb4;
    DECLARE v_msg LONGTEXT CHARACTER SET utf8mb4;
    DECLARE v_tb LONGTEXT CHARACTER SET utf8mb4;
    DECLARE v_at DATETIME(6);
    DECLARE v_later DATETIME(6);
    DECLARE v_held LONGTEXT DEFAULT '';
    DECLARE outcomes CURSOR FOR
        SELECT o.i, o.id, o.token, o.code, o.secs, o.result, o.e_type, o.e_msg, o.e_tb
        FROM JSON_TABLE(p_outcomes, '$[*]' COLUMNS (
                 i      INT PATH '$[0]',
                 id     VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[1]',
                 token  VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[2]',
                 code   INT PATH '$[3]',
                 secs   DOUBLE PATH '$[4]',
                 result LONGTEXT PATH '$[5]',
                 e_type VARCHAR(255) CHARACTER SET utf8mb4 PATH '$[6]',
                 e_msg  LONGTEXT CHARACTER SET utf8mb4 PATH '$[7]',
                 e_tb   LONGTEXT CHARACTER SET utf8mb4 PATH '$[8]'
             )) AS o;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = 1;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION
    BEGIN
        ROLLBACK;
        RESIGNAL;
    END;

    START TRANSACTION;
    SET v_at = UTC_TIMESTAMP(6);
    OPEN outcomes;
    each_outcome: LOOP
        FETCH outcomes INTO v_i, v_id, v_token, v_code, v_secs, v_result, v_type, v_msg, v_tb;
        IF v_done THEN
            LEAVE each_outcome;
        END IF;
        SET v_later = TIMESTAMPADD(MICROSECOND, ROUND(v_secs * 1000000), v_at);
        IF v_code = 0 THEN
            DELETE FROM {jobs} WHERE id = v_id AND token = v_token AND state = 'active';
        ELSEIF v_code = 1 THEN
            UPDATE {jobs}
            SET state = 'succeeded', result = FROM_BASE64(v_result), expires_at = v_later,
                finished_at = v_at, token = NULL, lease_until = NULL,
                error_type = NULL, error_message = NULL, traceback = NULL
            WHERE id = v_id AND token = v_token AND state = 'active';
        ELSEIF v_code IN (4, 5) THEN
            UPDATE {jobs}
            SET state = IF(v_code = 4, 'dead', 'cancelled'),
                expires_at = IF(v_code = 5, v_later, expires_at), finished_at = v_at,
                error_type = v_type, error_message = v_msg, traceback = v_tb,
                token = NULL, lease_until = NULL
            WHERE id = v_id AND token = v_token AND state = 'active';
        ELSEIF v_code = 2 THEN
            UPDATE {jobs}
            SET state = 'retrying', run_at = v_later,
                error_type = v_type, error_message = v_msg, traceback = v_tb,
                token = NULL, lease_until = NULL
            WHERE id = v_id AND token = v_token AND state = 'active';
        ELSE
            UPDATE {jobs}
            SET state = IF(v_secs > 0, 'scheduled', 'queued'), run_at = v_later,
                attempts = attempts - 1, token = NULL, lease_until = NULL
            WHERE id = v_id AND token = v_token AND state = 'active';
        END IF;
        IF ROW_COUNT() = 1 THEN
            SET v_held = CONCAT(v_held, v_i, ',');
        END IF;
    END LOOP;
    CLOSE outcomes;
    COMMIT;
    SELECT v_held;
END //

DELIMITER ;
