"""One calibration probe: ``python -m supervisor.execution.calibrate_probe REQUEST_JSON``.

Speaks a line protocol with ``supervisor.execution.calibrate`` on stdin/stdout: sizes its
thread pools as a trial's (on no cores of its own: a search's trials have none), trains
the benchmark's default model for one warm-up epoch, prints ``ready``, waits for
``go``, times ``epochs`` more and prints ``rate <samples/s>`` (or ``error <message>``);
it ends at once when its stdin closes (calibrate is gone). Its thread
environment was set by the parent before the start.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any


def _quiet_stdout() -> Any:
    """Keep the protocol stream clean: frameworks print to stdout at import."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return protocol


def _watch_parent(go: threading.Event) -> None:
    """Set ``go`` when calibrate says so; end this probe when calibrate is gone (its end
    of stdin closes): killed before it could stop its probes, it left them training (a
    hung one forever) on the node's cores."""
    for line in sys.stdin:
        if line.strip() == "go":
            go.set()
    os._exit(1)


def main(request: dict[str, Any]) -> None:
    out = _quiet_stdout()
    go = threading.Event()
    threading.Thread(target=_watch_parent, args=(go,), daemon=True).start()
    try:
        from supervisor.benchmarks import registry
        from supervisor.execution import node

        if request["cores"]:  # calibrate --cores: the allocation's, shared by every probe
            os.sched_setaffinity(0, request["cores"])
        if request["threads"]:  # tuned: thread pools sized as a worker slot's (the env's)
            node.configure(request["threads"])
        settings = node.NodeSettings(xla=request.get("xla", "auto"))
        bench = registry.load(request["target"])(request["options"])
        data = bench.load_data(0)
        try:  # counted before any training: a plugin that has none fails in a second
            samples = len(data.x_train)
        except (AttributeError, TypeError):
            raise TypeError(
                f"load_data returned a {type(data).__name__} without a sized x_train;"
                " calibrate counts the samples of an epoch as len(data.x_train)"
            ) from None
        node.before_build(settings)
        model = bench.build_model({}, 0)
        node.after_build(model, settings)
        bench.fit(model, data, {}, 1, lambda epoch, metrics: False)  # warm-up
        out.write("ready\n")
        go.wait()
        epochs = int(request["epochs"])
        t0 = time.perf_counter()
        bench.fit(model, data, {}, epochs, lambda epoch, metrics: False)
        elapsed = time.perf_counter() - t0
        out.write(f"rate {samples * epochs / elapsed}\n")
    except Exception as exc:
        out.write(f"error {type(exc).__name__}: {str(exc).splitlines()[0][:300]}\n")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
