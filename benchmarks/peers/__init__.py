"""Peer task queues, each measured from its own virtualenv (``benchmarks/.venvs/<peer>``).

One module per peer (on Redis: ``arq``, ``asynctasq``, ``celery``, ``dramatiq``, ``rq``,
``saq``, ``streaq``, ``taskiq``; on PostgreSQL: ``procrastinate``), each defining a
:class:`~benchmarks.framework.Framework` and a ``serve(spec, index)`` that runs that
framework's worker in a worker process. The
modules import their framework lazily, so the harness (Conveyor's venv) can import
them to read their settings, and a peer's venv never needs Conveyor.

- :mod:`benchmarks.peers.settings` — the settings each framework is measured at:
  concurrency 10, and a sweep for its best.
- :mod:`benchmarks.peers._base` — what every peer shares: the external worker
  processes (``python -m benchmarks.peers SPEC INDEX``), readiness, process-tree RSS/CPU,
  thread-pool producers for sync frameworks.

Standard library only.
"""
