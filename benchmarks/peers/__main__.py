"""One worker process of a peer: ``python -m benchmarks.peers SPEC.json INDEX``.

Started by :class:`benchmarks.peers._base.ExternalWorker` with the peer's venv's
interpreter; runs until it is killed. Standard library plus the one peer.
"""

import json
import sys


def main(argv: list[str]) -> int:
    with open(argv[0]) as f:
        pool = json.load(f).get("pool")
    if pool == "gevent":  # before anything imports socket, threading or time's users
        from gevent import monkey

        monkey.patch_all()

    import importlib
    from pathlib import Path

    from benchmarks.framework import FRAMEWORKS, RunSpec

    spec = RunSpec.load(Path(argv[0]))
    module = importlib.import_module(FRAMEWORKS[spec.framework].ref.partition(":")[0])
    module.serve(spec, int(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
