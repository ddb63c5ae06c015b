"""DeepHyper's CBO on the problems of ``perf.quality``, on the same simulated cluster.

    python -m supervisor.perf.quality --samplers tpe,cbo [--cbo-venv /tmp/dh-venv]

DeepHyper is never a dependency of the project: as ``perf.compare`` does, it lives in a
virtual environment of its own (made with ``python3 -m venv`` and ``pip install
deephyper`` on first use). This file is both sides: run by that environment's
interpreter (``serve``), it imports nothing outside the standard library at the top and
holds one ``deephyper.hpo.CBO`` (its defaults: ExtraTrees surrogate, UCBd acquisition,
random initial points; multi-point strategy ``qUCBd``, DeepHyper's choice for many
workers) that answers ``ask``/``tell`` lines on stdin; imported by ``perf.quality``, it
runs the campaign: ``inflight`` slots, lognormal durations drawn as
``scale_cluster.Cluster`` draws them (same seed, same order of starts), a trial's regret
told when it ends (as ``-regret``: CBO maximizes).

An approximation of DeepHyper's asynchronous loop (which asks one configuration per
finished evaluation): the first wave is one ``ask`` of ``inflight`` configurations; after
it, CBO is asked for ``inflight / REASK`` at a time (at least 1) with every result that
arrived, and a freed slot takes the next of them at once (no slot waits). So a proposal
misses at most the last ``inflight / REASK`` results, and its pending points are those of
its own batch. That keeps CBO's cost at one surrogate fit per ``inflight / REASK``
trials: asked one at a time with the default ``cl_max``, CBO took ~1.5 s per ask on this
2-core machine (48 s for one batch of 64), too slow for 10 seeds here. Virtual time counts
trial durations only: CBO's own compute is not charged, which favours it against the
supervisor, whose driver time is.
"""

from __future__ import annotations

import json
import sys
from typing import Any

DEFAULT_VENV = "/tmp/dh-venv"


STRATEGY = "qUCBd"
REASK = 8  # after the first wave, CBO is asked for in-flight / REASK configurations at once


def serve(space: list[dict[str, Any]], seed: int) -> None:
    """In DeepHyper's environment: one CBO answering JSON lines (``{"ask": n}`` ->
    a list of configurations; ``{"tell": [[config, objective], ...]}`` -> ``[]``)."""
    import tempfile

    from deephyper.hpo import CBO, HpProblem  # type: ignore[import-not-found, unused-ignore]

    problem = HpProblem()
    for p in space:
        if p["kind"] == "categorical":
            problem.add_hyperparameter(list(p["choices"]), p["name"])
        elif p["kind"] == "int":
            problem.add_hyperparameter((int(p["low"]), int(p["high"])), p["name"])
        else:
            problem.add_hyperparameter((float(p["low"]), float(p["high"])), p["name"])
    with tempfile.TemporaryDirectory() as folder:
        search = CBO(
            problem,
            random_state=seed,
            log_dir=folder,
            checkpoint_history_to_csv=False,
            multi_point_strategy=STRATEGY,
        )
        for line in sys.stdin:
            request = json.loads(line)
            if "ask" in request:
                out: Any = [_plain(c) for c in search.ask(int(request["ask"]))]
            else:
                search.tell([(dict(c), float(v)) for c, v in request["tell"]])
                out = []
            print(json.dumps(out), flush=True)


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    """Numpy scalars -> Python ones (JSON, and the tables' integer indices)."""
    return {k: v.item() if hasattr(v, "item") else v for k, v in config.items()}


def campaign(
    problem: Any,
    space: list[dict[str, Any]],
    inflight: int,
    seed: int,
    trials: int,
    mean: float,
    venv: str,
) -> tuple[list[float], list[float], list[float]]:
    """(regret of each trial in the order trials finished, the virtual time each ended,
    the value each reported: its regret, or for a noisy problem one seed's value);
    ``space``: the problem's parameters as ``serve`` takes them."""
    import heapq
    import math
    import random
    import subprocess

    python = f"{venv}/bin/python"
    command = [python, __file__, "serve", json.dumps(space), str(seed)]
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def call(request: dict[str, Any]) -> Any:
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"CBO ended (exit {proc.wait()}): see its stderr above")
        return json.loads(line)

    rng = random.Random(seed)
    sigma = 0.5
    mu = math.log(mean) - sigma**2 / 2  # as scale_cluster.Cluster
    running: list[tuple[float, int, dict[str, Any]]] = []
    asked = 0

    def start(configs: list[dict[str, Any]], now: float) -> None:
        nonlocal asked
        for config in configs:
            heapq.heappush(running, (now + rng.lognormvariate(mu, sigma), asked, config))
            asked += 1

    regrets: list[float] = []
    times: list[float] = []
    reported: list[float] = []
    batch: list[dict[str, Any]] = []

    def next_config() -> list[dict[str, Any]]:
        if not batch:
            told = [
                [c, -r] for c, r in zip(done, reported[len(reported) - len(done) :], strict=True)
            ]
            if told:
                call({"tell": told})
                done.clear()
            size = inflight if asked == 0 else max(1, -(-inflight // REASK))
            batch.extend(call({"ask": min(size, trials - asked)}))
        return [batch.pop(0)]

    done: list[dict[str, Any]] = []  # finished, not yet told
    try:
        for _ in range(min(inflight, trials)):
            start(next_config(), 0.0)
        while running:
            now, _, config = heapq.heappop(running)
            regrets.append(float(problem.regret(config)))
            reported.append(problem.observed(config, seed))
            times.append(now)
            done.append(config)
            if asked < trials:
                start(next_config(), now)
    finally:
        stdin.close()
        proc.wait(timeout=60)
    return regrets, times, reported


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    serve(json.loads(sys.argv[2]), int(sys.argv[3]))
