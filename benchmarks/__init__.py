"""Conveyor's benchmark harness: ``python -m benchmarks`` (see ``docs/performance.md``).

Layout:

- :mod:`benchmarks.scenarios` — what is measured (NOOP, IO, CPU, LATENCY).
- :mod:`benchmarks.framework` — the :class:`~benchmarks.framework.Framework` protocol a
  queue implements to be benchmarked, and the table of known frameworks.
- :mod:`benchmarks.conveyor_runner` — Conveyor's implementation (one per driver URL).
- :mod:`benchmarks.run_one` — one measured run, in a fresh subprocess.
- :mod:`benchmarks.timing` — the completion table tasks write their timestamps into.
- :mod:`benchmarks.report` — tables, ``results/latest.{md,json,png}``.
- :mod:`benchmarks.compare` — side by side with the peers (:mod:`benchmarks.peers`), on
  Redis and on PostgreSQL/MariaDB; :mod:`benchmarks.venvs` builds the peers' venvs;
  :mod:`benchmarks.redisctl` and :mod:`benchmarks.sqlctl` find the servers.
- :mod:`benchmarks.codec_bench` — msgspec vs msgpack-python.

``framework``, ``run_one``, ``scenarios``, ``timing``, ``redisctl`` and ``sqlctl`` use the
standard library only, so that a peer framework runs them from its own virtualenv
(``benchmarks/.venvs/<name>``) without Conveyor's dependencies.
"""
