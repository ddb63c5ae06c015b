"""How the cost of one trial's study operations grows with the finished trials, per
sampler and storage (the driver's ceiling: it does these one trial at a time).

    python -m supervisor.perf.sampler_cost [--marks 100,1000,10000] [--window 30]
        [--samplers random,tpe,gp] [--storages memory,journal]
        [--postgres postgresql://postgres@127.0.0.1:55432/supervisor_test] [--gp-max 300]
    python -m supervisor.perf.sampler_cost --marks 100,1000 --window 10   # a quick look
    python -m supervisor.perf.sampler_cost --samplers tpe,tpe:history=null --storages journal
    python -m supervisor.perf.sampler_cost --samplers turbo,turbo:batch=penalize --pending 400

For each storage, one study of the 8-parameter no-op space (``--params``) is opened as a
campaign opens it; before each mark it is filled up to the mark with finished trials that
carry what the driver stores (``Study.add_trials``: params, value, learning curve, worker,
times, metrics, history), then, for each sampler in turn (swapped on the same study),
``--window`` trials go through the driver's per-trial path and are timed:

* ``ask``: ``study.ask()`` and the suggestion of every parameter (where samplers work);
* ``attrs``: the user attributes and the intermediate value the driver writes per trial;
* ``tell``: ``study.tell``.

Storages: ``memory`` (Optuna's in-memory), ``journal`` (the campaign default: the journal
file of a run directory), ``sqlite``, and PostgreSQL when ``--postgres URL`` is given (a
study of a unique name, deleted afterwards). GP (Optuna's GPSampler, which needs torch) is
cubic in the trials: it is measured only at marks up to ``--gp-max`` (300 by default) and
skipped, with the reason, where torch is not installed. A sampler may carry options
(``tpe:history=null``: TPE on the whole study instead of its bounded view). With
``--pending N``, N trials are asked before the timed ones and stay running meanwhile (the
trials in flight a proposal must account for); they are told afterwards, untimed.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import supervisor.optuna_internals as internals
from supervisor.perf import harness

if TYPE_CHECKING:
    import optuna

    from supervisor.config.experiment import Experiment


@dataclass
class Cell:
    ask: list[float] = field(default_factory=list)
    attrs: list[float] = field(default_factory=list)
    tell: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)


def fill(study: optuna.Study, exp: Experiment, upto: int, rng: random.Random) -> None:
    """Add finished trials until the study has ``upto``, as the driver leaves them."""
    from optuna.trial import TrialState, create_trial

    missing = upto - len(study.get_trials(deepcopy=False))
    trials = []
    for _ in range(max(0, missing)):
        params, dists = {}, {}
        for spec in exp.params:
            dist = spec.distribution()
            dists[spec.name] = dist
            params[spec.name] = _draw(spec, rng)
        value = harness.loss_of(params)
        trials.append(
            create_trial(
                state=TrialState.COMPLETE,
                params=params,
                distributions=dists,
                value=value,
                intermediate_values={0: value},
                user_attrs=_result_attrs(value),
            )
        )
    if trials:
        study.add_trials(trials)


def _draw(spec: Any, rng: random.Random) -> Any:
    if spec.kind == "categorical":
        return rng.choice(spec.choices)
    if spec.kind == "int":
        return rng.randrange(int(spec.low), int(spec.high) + 1, int(spec.step or 1))
    if spec.log:
        return float(spec.low) * (float(spec.high) / float(spec.low)) ** rng.random()
    return rng.uniform(float(spec.low), float(spec.high))


def _result_attrs(value: float) -> dict[str, Any]:
    now = time.time()
    return {
        "supervisor:driver": "host:1:abcd",
        "worker": "tcp://10.0.0.1:40000",
        "hostname": "nid00001",
        "started": now - 60.0,
        "finished": now,
        "duration_s": 60.0,
        "metrics": {"loss": value, "train_seconds": 59.0, "n_params": 1.2e6},
        "history": [{"epoch": 0.0, "loss": value}],
        "rss_mb": 2050.0,
    }


def driver_trial(study: optuna.Study, exp: Experiment, cell: Cell) -> None:
    """One trial's study operations, in the driver's order, timed."""
    from supervisor.config.params import suggest

    t0 = time.perf_counter()
    trial = study.ask()
    suggest(trial, exp.params)
    t1 = time.perf_counter()
    value = harness.loss_of(trial.params)
    trial.set_user_attr("supervisor:driver", "host:1:abcd")
    trial.report(value, step=0)
    for key, attr in _result_attrs(value).items():
        trial.set_user_attr(key, attr)
    t2 = time.perf_counter()
    study.tell(trial, value)
    t3 = time.perf_counter()
    cell.ask.append(1000 * (t1 - t0))
    cell.attrs.append(1000 * (t2 - t1))
    cell.tell.append(1000 * (t3 - t2))
    cell.total.append(1000 * (t3 - t0))


def asked(study: optuna.Study, exp: Experiment) -> optuna.Trial:
    """A trial asked and left running: one of the trials in flight (``--pending``)."""
    from supervisor.config.params import suggest

    trial = study.ask()
    suggest(trial, exp.params)
    return trial


def sampler_unusable(name: str) -> str | None:
    name = name.partition(":")[0]
    if name == "gp" and importlib.util.find_spec("torch") is None:
        return "needs torch, not installed in this environment (pip install torch)"
    return None


def measure_storage(
    args: argparse.Namespace, storage: str, marks: list[int], folder: Any
) -> dict[tuple[str, int], Cell]:
    import optuna

    from supervisor.config.samplers import make_sampler

    name = f"sampler-cost-{uuid.uuid4().hex[:8]}"  # PostgreSQL may hold earlier ones
    exp = harness.experiment(folder, trials=10**6, n_params=args.params, study=name)
    url = harness.storage_url(storage, folder)
    study = harness.open_study(exp, url)
    rng = random.Random(0)
    cells: dict[tuple[str, int], Cell] = {}
    try:
        for mark in marks:
            start = time.perf_counter()
            fill(study, exp, mark, rng)
            filled = time.perf_counter() - start
            for sampler in args.sampler_list:
                if (sampler.startswith("gp") and mark > args.gp_max) or sampler_unusable(sampler):
                    continue
                name, options = _spec(sampler)
                study.sampler = make_sampler(name, options, seed=mark)
                cell = cells.setdefault((sampler, mark), Cell())
                pending = [asked(study, exp) for _ in range(args.pending)]  # not timed
                for _ in range(args.window if not sampler.startswith("gp") else args.gp_window):
                    driver_trial(study, exp, cell)
                for trial in pending:  # finished, so the next sampler sees only its own
                    study.tell(trial, harness.loss_of(trial.params))
            print(f"  {storage}: {mark} trials (filled in {filled:.1f} s)", flush=True)
    finally:
        if url != "memory" and not url.startswith("journal:"):
            optuna.delete_study(study_name=name, storage=internals.study_storage(study))
    return cells


def _spec(sampler: str) -> tuple[str, dict[str, Any]]:
    """``tpe`` or ``tpe:history=null`` (options in YAML) -> name and options."""
    import yaml

    name, _, rest = sampler.partition(":")
    options: dict[str, Any] = {"n_startup_trials": 10} if name == "tpe" else {}
    for item in filter(None, rest.split("+")):
        key, _, value = item.partition("=")
        options[key] = yaml.safe_load(value)
    return name, options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--marks", default="100,1000,10000", help="finished trials")
    parser.add_argument("--window", type=int, default=30, help="timed trials per cell")
    parser.add_argument("--samplers", default="random,tpe,gp")
    parser.add_argument("--storages", default="memory,journal", help="memory,journal,sqlite")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL to add")
    parser.add_argument("--gp-max", type=int, default=300, help="GP only up to this mark")
    parser.add_argument("--gp-window", type=int, default=5, help="timed GP trials per cell")
    parser.add_argument("--params", type=int, default=8)
    parser.add_argument("--pending", type=int, default=0, help="trials in flight meanwhile")
    args = parser.parse_args(argv)
    args.sampler_list = args.samplers.split(",")
    return args


def main() -> None:
    args = parse_args()
    marks = sorted({int(m) for m in args.marks.split(",")})
    gp = "gp" in args.sampler_list and not sampler_unusable("gp")
    if gp and args.gp_max not in marks and args.gp_max < max(marks):
        marks = sorted({*marks, args.gp_max})
    storages = args.storages.split(",") + ([args.postgres] if args.postgres else [])

    harness.quiet_logs()
    for sampler in args.sampler_list:
        why = sampler_unusable(sampler)
        if why:
            print(f"{sampler}: skipped: {why}")
    rows = []
    for storage in storages:
        with harness.scratch() as folder:
            cells = measure_storage(args, storage, marks, folder)
        shown = "postgresql" if storage == args.postgres else storage
        for (sampler, mark), cell in sorted(cells.items()):
            rows.append(
                [
                    shown,
                    sampler,
                    mark,
                    len(cell.total),
                    harness.percentile(cell.ask, 50),
                    harness.percentile(cell.attrs, 50),
                    harness.percentile(cell.tell, 50),
                    harness.percentile(cell.total, 50),
                    harness.percentile(cell.total, 99),
                ]
            )
    print(f"\n{args.params} parameters; ms per trial, median of the timed trials\n")
    headers = ["storage", "sampler", "finished", "n", "ask", "attrs", "tell", "total", "p99"]
    print(harness.table(headers, rows))
    print(
        "\nanchors: Optuna random in-memory ~0.2 ms/trial, SQLite ~50x more, TPE ~17 ms at"
        " 1,000 trials with 8 parameters"
    )


if __name__ == "__main__":
    main()
