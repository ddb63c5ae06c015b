"""``supervisor rerun RUN TRIAL``: a stored trial trained again from what the run stored."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import supervisor
from supervisor.benchmarks import EpochReport, Option
from supervisor.commands.rerun import Comparison
from supervisor.execution.trial import TrialResult
from tests.toy_benchmark import ToyBenchmark

TARGET = f"{__name__}:SeededNoise"


class SeededNoise(ToyBenchmark):
    """A quadratic plus noise drawn from the model seed and the data seed; with
    ``fresh: true`` the noise is drawn unseeded, as a non-deterministic framework would."""

    options: ClassVar[dict[str, Option]] = {
        **ToyBenchmark.options,
        "fresh": Option(False, "draw the noise without a seed"),
    }

    def build_model(self, params: Mapping[str, Any], seed: int) -> Any:
        return {"seed": seed}

    def fit(
        self, model: Any, data: Any, params: Mapping[str, Any], epochs: int, report: EpochReport
    ) -> dict[str, float]:
        seeds = None if self.config["fresh"] else [model["seed"], data["seed"]]
        noise = float(np.random.default_rng(seeds).normal())
        loss = (float(params["x"]) - self.config["offset"]) ** 2 + noise
        report(0, {"loss": loss, "score": -loss})
        return {"loss": loss, "score": -loss}


def space(fresh: bool, offset: float = 2.0) -> str:
    return (
        f'study: again\nbenchmark: {{name: "{TARGET}", options: {{fresh: {str(fresh).lower()},'
        f" offset: {offset}}}}}\nobjectives: [loss]\n"
        "params:\n  x: {type: float, low: -4, high: 4}\n"
        "budget: {trials: 3, epochs: 1}\nsampler: random\nseed: 21\n"
    )


def tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def rerun(tmp_path: Path, trial: int) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "supervisor.cli", "rerun", "again", str(trial)]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def search(tmp_path: Path, fresh: bool, text: str | None = None) -> supervisor.Run:
    """The search of ``space(fresh)``, or of ``text`` where given."""
    (tmp_path / "space.yaml").write_text(text or space(fresh))
    return supervisor.search(
        str(tmp_path / "space.yaml"),
        workers=1,
        dashboard=":0",
        progress="none",
        report=False,
        runs_dir=tmp_path / "runs",
    )


def test_a_trial_is_reproduced_bit_for_bit_from_the_run_alone(tmp_path: Path) -> None:
    run = search(tmp_path, fresh=False)
    stored = {t.number: t.values[0] for t in run.study.trials}
    # The space file changed since: the rerun trains what the run stored, not the file.
    (tmp_path / "space.yaml").write_text(space(fresh=False, offset=-3.0).replace("21", "99"))
    before = tree(tmp_path / "runs")
    done = rerun(tmp_path, 1)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "trial 1: reproduced bit-for-bit" in done.stdout
    assert repr(stored[1]) in done.stdout  # the stored value, to the last digit
    assert tree(tmp_path / "runs") == before  # nothing written into the run
    assert run.rerun(2).identical  # the same from Python


def test_a_trial_run_before_a_resume_changed_the_space_reruns_as_it_ran(
    tmp_path: Path,
) -> None:
    """A resume with other benchmark options replaces the space stored with the study:
    the rerun of an earlier trial used the new options and said training was not
    deterministic. It trains what the trial recorded it was given."""
    first = search(tmp_path, fresh=False)
    search(tmp_path, False, space(fresh=False, offset=-3.0).replace("3,", "5,"))
    assert len(first.study.trials) == 5
    assert first.rerun(0).identical  # offset 2.0, as it ran
    assert first.rerun(4).identical  # offset -3.0, as it ran


def test_a_rerun_that_differs_says_so_and_exits_1(tmp_path: Path) -> None:
    search(tmp_path, fresh=True)
    done = rerun(tmp_path, 0)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "trial 0: the rerun differs" in done.stdout
    assert "Traceback" not in done.stderr


def test_the_comparison_ignores_what_is_measured_again() -> None:
    result = TrialResult(trial_number=3, status="complete", metrics={"loss": 1.0})
    same = Comparison(3, {"loss": 1.0}, {"loss": 1.0}, result)
    assert same.identical and same.lines()[-1] == "trial 3: reproduced bit-for-bit"
    other = Comparison(3, {"loss": 1.0}, {"loss": 1.5}, result)
    assert not other.identical and "+0.5" in other.lines()[1]
    failed = TrialResult(trial_number=3, status="failed", error="RuntimeError: boom")
    assert not Comparison(3, {"loss": 1.0}, {}, failed).identical


def test_a_trial_reruns_with_the_node_settings_it_ran_with(tmp_path: Path) -> None:
    """A resume changed ``node:``: the rerun of an earlier trial ran under the new XLA and
    precision settings, not those its provenance recorded."""
    first = search(tmp_path, False, space(False) + "node: {xla: off, precision: float32}\n")
    changed = space(False).replace("3,", "4,") + "node: {xla: on, precision: mixed_bfloat16}\n"
    search(tmp_path, False, changed)
    for trial, xla, precision in [(0, "off", "float32"), (3, "on", "mixed_bfloat16")]:
        ran = first.rerun(trial).result.extra["provenance"]["settings"]
        assert (ran["xla"], ran["precision"]) == (xla, precision)
