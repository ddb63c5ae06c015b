"""Tools of the fault-injection and PostgreSQL tests: campaigns of the toy benchmark run
as the user runs them (``python -m supervisor.cli search``), counted from their storage,
and the table of faults injected that the suite prints at its end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from supervisor.errors import UserError
from supervisor.study import attrs
from supervisor.study.storage import load_study

T = TypeVar("T")

TOY = "tests.toy_benchmark:ToyBenchmark"
CAMPAIGN_FLAGS = ("--plain", "--no-report", "--dashboard", "127.0.0.1:0")


def toy_space(
    folder: Path,
    trials: int,
    *,
    delay: float = 0.05,
    epochs: int = 2,
    params: str = "  x: {type: float, low: -4, high: 4}\n",
    study: str = "toy",
) -> Path:
    path = folder / f"{study}.yaml"
    path.write_text(
        f"study: {study}\n"
        f'benchmark: {{name: "{TOY}", options: {{delay: {delay}}}}}\n'
        "objectives: [loss]\n"
        f"params:\n{params}"
        f"budget: {{trials: {trials}, epochs: {epochs}}}\n"
        "sampler: random\n"
        "seed: 5\n"
    )
    return path


def search_args(space: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "supervisor.cli", "search", space.name, *CAMPAIGN_FLAGS, *extra]


def run_search(space: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        search_args(space, *extra),
        cwd=space.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_search(space: Path, *extra: str) -> subprocess.Popen[str]:
    """A campaign in its own session, so that its whole process tree can be killed."""
    return subprocess.Popen(
        search_args(space, *extra),
        cwd=space.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def together(call: Callable[[], T], drivers: int = 2) -> list[T]:
    """What ``call`` returns in each of ``drivers`` threads started at the same instant
    (drivers of one campaign starting together); the first error of any is raised."""
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(call())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(drivers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    return results


def journal_url(space: Path, study: str = "toy") -> str:
    return f"journal:{space.parent}/runs/{study}/journal.log"


def finished(study: optuna.Study) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False) if attrs.counts_toward_budget(t))


def wait_for(
    url: str, study_name: str, done: Callable[[optuna.Study], bool], timeout: float = 120
) -> optuna.Study:
    """Poll the storage until ``done(study)``; the study as last read."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            study = load_study(url, study_name)
        except UserError:  # the storage exists a moment before the study in it
            continue
        if done(study):
            return study
    raise AssertionError(f"{study_name}: condition not reached in {timeout} s")


def kill_session(proc: subprocess.Popen[str]) -> None:
    """kill -9 every process of the campaign's session (driver, nannies, workers, trials)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def original(trial: FrozenTrial) -> int:
    """The number of the first trial of this configuration (itself unless a re-run)."""
    retry_of = trial.user_attrs.get(attrs.RETRY_OF)
    return int(retry_of) if retry_of is not None else trial.number


@dataclass
class Tally:
    """What a campaign's storage says about lost and duplicated work."""

    states: Counter[str]
    complete: int
    lost: int  # configurations asked that never completed nor failed by the model
    duplicated: int  # configurations that completed more than once

    @classmethod
    def of(cls, study: optuna.Study) -> Tally:
        trials = study.get_trials(deepcopy=False)
        states: Counter[str] = Counter()
        for t in trials:
            kind = t.user_attrs.get(attrs.FAILURE)
            states[t.state.name + (f":{kind}" if kind else "")] += 1
        done: Counter[int] = Counter()
        for t in trials:
            if attrs.counts_toward_budget(t):
                done[original(t)] += 1
        # A surplus trial (a driver's ask raced another's for the last budget slot) was
        # never meant to run: its configuration is not lost work.
        originals = {
            original(t)
            for t in trials
            if t.state != TrialState.WAITING and t.user_attrs.get(attrs.FAILURE) != "surplus"
        }
        return cls(
            states=states,
            complete=states["COMPLETE"],
            lost=sum(1 for n in originals if done[n] == 0),
            duplicated=sum(n - 1 for n in done.values() if n > 1),
        )


def distinct_trained(study: optuna.Study) -> int:
    """Distinct configurations the budget paid for by training them: trials that count
    toward it and were not told with a twin's values."""
    from supervisor.study.index import param_key

    return len(
        {
            param_key(t.params)
            for t in study.get_trials(deepcopy=False)
            if attrs.counts_toward_budget(t) and attrs.DUPLICATE_OF not in t.user_attrs
        }
    )


@dataclass
class FaultRow:
    fault: str
    injected: int
    lost: int
    duplicated: int
    # None: not meant to run (the input is refused); "stopped": meant to stop early (a
    # broken model fails fast)
    completed: bool | str | None


ROWS: list[FaultRow] = []


def record(
    fault: str, injected: int, lost: int, duplicated: int, completed: bool | str | None
) -> None:
    ROWS.append(FaultRow(fault, injected, lost, duplicated, completed))


def _outcome(completed: bool | str | None) -> str:
    if completed is None:
        return "refused"
    if isinstance(completed, str):
        return completed
    return "yes" if completed else "NO"


def table(rows: list[FaultRow]) -> str:
    lines = [
        f"{'fault':<48} {'injected':>8} {'lost':>5} {'duplicated':>10} {'campaign completed':>18}"
    ]
    for r in rows:
        lines.append(
            f"{r.fault:<48} {r.injected:>8} {r.lost:>5} {r.duplicated:>10}"
            f" {_outcome(r.completed):>18}"
        )
    total = (
        f"{'total':<48} {sum(r.injected for r in rows):>8} {sum(r.lost for r in rows):>5}"
        f" {sum(r.duplicated for r in rows):>10}"
        f" {sum(r.completed is True for r in rows):>10} of"
        f" {sum(isinstance(r.completed, bool) for r in rows):<5}"
    )
    return "\n".join([*lines, total])
