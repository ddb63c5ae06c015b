"""A long campaign keeps the artifacts of its best few trials only: the report draws the
best's, and nothing else reads them (``supervisor.study.kept_artifacts``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

import supervisor.rundir as rundir
from supervisor.study import kept_artifacts
from supervisor.study.driver import Driver
from tests.study.test_driver import experiment, make_study

SPACE = (
    "  x: {type: float, low: -4, high: 4}\n"
    "  artifacts: {type: categorical, choices: [true]}\n"
    "  mode: {type: categorical, choices: [ok, nan]}"  # a NaN loss: a failure
)


def _trial_folders(run_dir: Path) -> dict[int, list[str]]:
    folder = run_dir / rundir.TRIALS_DIR
    if not folder.exists():
        return {}
    return {int(p.name): sorted(f.name for f in p.iterdir()) for p in folder.iterdir()}


def test_a_campaign_keeps_the_artifacts_of_its_best_trials_and_no_empty_folder(
    tmp_path: Path, threads_client: Any
) -> None:
    """Every complete trial kept its artifacts.npz in a folder of its own (and a trial that
    failed with a NaN loss too): 100,000 trials, 100,000 folders no one read."""
    exp = experiment(tmp_path, SPACE, "{trials: 16, epochs: 1}")
    study = make_study(exp)
    Driver(exp, study, threads_client, slots=2, run_dir=str(tmp_path)).run()
    complete = sorted(
        (t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE),
        key=lambda t: (t.values[0], t.number),
    )
    assert len(complete) > kept_artifacts.KEEP
    assert any(t.state == optuna.trial.TrialState.FAIL for t in study.trials)
    best = [t.number for t in complete[: kept_artifacts.KEEP]]
    assert _trial_folders(tmp_path) == {n: [rundir.ARTIFACTS_FILE] for n in best}
    # The report's reader finds the best trial's, as before.
    path = tmp_path / complete[0].user_attrs["artifacts"]
    assert path.is_file()

    # A resume ranks what earlier runs kept: a better trial pushes the worst one out.
    more = experiment(tmp_path, SPACE, "{trials: 24, epochs: 1}")
    Driver(more, study, threads_client, slots=2, run_dir=str(tmp_path)).run()
    complete = sorted(
        (t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE),
        key=lambda t: (t.values[0], t.number),
    )
    best = [t.number for t in complete[: kept_artifacts.KEEP]]
    assert _trial_folders(tmp_path) == {n: [rundir.ARTIFACTS_FILE] for n in best}


def test_a_trial_breaking_the_constraints_or_a_maximised_objective() -> None:
    """Ranked as the report ranks: the first objective's direction; a trial that breaks
    the constraints is never the best drawn."""
    study = optuna.create_study(direction="maximize")
    kept = kept_artifacts.KeptArtifacts(Path("/nonexistent/run"), study)
    for number, value in enumerate([0.1, 0.9, float("nan"), 0.5, 0.7, 0.3, 0.8, 0.2]):
        kept.add(number, value)
    assert kept.numbers() == [1, 6, 4, 3, 5]


def test_the_first_trial_a_resume_ranks_among_the_best_pushes_the_worst_file_out(
    tmp_path: Path,
) -> None:
    """A resumed run ranked what earlier runs kept once its first trial with artifacts
    was told, that trial among them: the one it pushed out of the best kept its file."""
    from supervisor.execution.trial import TrialResult
    from supervisor.study.events import Silent
    from supervisor.study.recorder import Recorder

    exp = experiment(tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 9, epochs: 1}")
    study = optuna.create_study(direction="minimize")

    def finish(rec: Recorder, value: float) -> None:
        trial = study.ask()
        path = rundir.trial_dir(tmp_path, trial.number) / rundir.ARTIFACTS_FILE
        path.parent.mkdir(parents=True)
        path.write_bytes(b"arrays")
        trial.set_user_attr("artifacts", str(path.relative_to(tmp_path)))
        result = TrialResult(trial.number, "complete", [value], extra={"artifacts": "x"})
        rec.complete(trial, [value], result)

    first = Recorder(exp, study, Silent(), str(tmp_path), max_attempts=3)
    for value in (0.6, 0.1, 0.5, 0.2, 0.4, 0.3):
        finish(first, value)
    assert sorted(_trial_folders(tmp_path)) == [1, 2, 3, 4, 5]
    finish(Recorder(exp, study, Silent(), str(tmp_path), max_attempts=3), 0.0)
    assert sorted(_trial_folders(tmp_path)) == [1, 3, 4, 5, 6]


def test_a_dead_driver_s_trial_leaves_no_arrays_once_recovered(
    tmp_path: Path, threads_client: Any
) -> None:
    """The driver died (a batch job's wall time) while a trial had saved its artifacts
    and predictions but not told its result: the next start re-runs it under a new
    number, and the dead attempt's files stayed for good."""
    import socket

    from supervisor.study import attrs

    exp = experiment(tmp_path, SPACE, "{trials: 2, epochs: 1}")
    study = make_study(exp)
    dead = study.ask({"x": optuna.distributions.FloatDistribution(-4, 4)})
    dead.set_user_attr(attrs.DRIVER, f"{socket.gethostname()}:{2**22 + 12345}:dead")
    folder = rundir.trial_dir(tmp_path, dead.number)
    folder.mkdir(parents=True)
    for name in (rundir.ARTIFACTS_FILE, rundir.OUTPUTS_FILE):
        (folder / name).write_bytes(b"arrays")
    Driver(exp, study, threads_client, slots=1, run_dir=str(tmp_path)).run()
    assert study.trials[dead.number].state == optuna.trial.TrialState.FAIL
    assert dead.number not in _trial_folders(tmp_path)
