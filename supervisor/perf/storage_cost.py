"""Cost of one ask+tell per Optuna storage, as the driver uses it (with user attrs).

    python -m supervisor.perf.storage_cost [--trials 300]

Prints the median and p99 milliseconds per trial for in-memory, Optuna's journal file,
the campaign journal (our default: the same file format, writes batched as the driver
batches them) and SQLite, so the choice of the embedded default can be checked on any node.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def measure(storage: object, trials: int) -> list[float]:
    import optuna

    from supervisor.study.storage import batch

    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))  # type: ignore[arg-type]
    costs = []
    for i in range(trials):
        t0 = time.perf_counter()
        trial = study.ask()
        with batch(study):  # what the driver writes at once; a no-op on other storages
            x = trial.suggest_float("x", -1, 1)
        with batch(study):
            trial.set_user_attr("worker", "tcp://127.0.0.1:1")
            trial.set_user_attr("metrics", {"loss": x * x, "train_seconds": 1.0})
            study.tell(trial, x * x)
        costs.append((time.perf_counter() - t0) * 1000)
        del i
    return costs


def main() -> None:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    from supervisor.study.storage import open_storage

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=300)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        storages = {
            "in-memory": None,
            "journal file": optuna.storages.JournalStorage(
                JournalFileBackend(str(Path(tmp) / "journal.log"))
            ),
            "campaign journal": open_storage(f"journal:{Path(tmp) / 'campaign.log'}"),
            "sqlite": f"sqlite:///{Path(tmp) / 'db.sqlite'}",
        }
        print(f"{'storage':<16} {'median ms':>10} {'p99 ms':>8}   ({args.trials} trials)")
        for name, storage in storages.items():
            costs = sorted(measure(storage, args.trials))
            p99 = costs[min(len(costs) - 1, int(0.99 * len(costs)))]
            print(f"{name:<16} {statistics.median(costs):>10.2f} {p99:>8.2f}")


if __name__ == "__main__":
    main()
