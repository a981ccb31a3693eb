"""The shared engine of the SQL drivers (PostgreSQL, MySQL/MariaDB).

One module per idea, each dialect-neutral:

* :mod:`.options`    the URL's query options (table prefix, schema, pool, retention)
* :mod:`.resources`  named queries and versioned ``schema_vN.sql`` scripts, per dialect folder
* :mod:`.migrations` versioned, locked, idempotent schema upgrades; the schema check
* :mod:`.rows`       database rows -> :class:`~conveyor.core.job.JobInfo`, outcome encoding
* :mod:`.idle`       when an idle worker's reserve could find work (wake-ups and timers)
* :mod:`.pg_listen`  PostgreSQL ``LISTEN`` on a connection of its own, reconnecting
* :mod:`.finished`   waiting for a job to finish (local wake-ups, then polling)
* :mod:`.pruning`    throttled, batched deletion of finished jobs by workers
* :mod:`.loops`      a driver's connections belong to one event loop; calls hop to it
* :mod:`.callers`    recognising the caller's connection for transactional enqueue

The SQLite driver keeps its own resources in ``sqlite/`` (it predates this package).
"""
