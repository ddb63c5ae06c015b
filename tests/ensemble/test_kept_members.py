"""An ensemble built after a search that kept its best models (``keep_models``) without an
``ensemble:`` section: the search kept no predictions, but a member of a kept trial's own
configuration and seed is that model, loaded, not trained again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from optuna.trial import TrialState

import supervisor
import supervisor.rundir as rundir
from supervisor.study.storage import load_study
from tests.study.test_kept_models import kept_space as _space


def test_a_later_ensemble_loads_the_models_the_search_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every member was trained again, hours each on a real model, though the search had
    kept it. With several objectives the kept models are the Pareto front first and the
    ensemble takes the best by the first objective: the members outside them train."""
    monkeypatch.chdir(tmp_path)
    space = _space("later", 8, 3) | {"objectives": ["val_nll", "val_accuracy"]}
    run = supervisor.search(space, workers=2, report=False, progress="none")
    kept = run.kept_models
    members = [int(n) for n in run.trials.sort_values(["val_nll", "number"])["number"][:4]]
    loaded = [n for n in members if n in kept]
    assert len(loaded) >= 2 and len(loaded) < 4  # some kept (the best always is), some not
    # A kept model damaged since (a truncated copy): its member trains instead.
    damaged = members[0]
    path = rundir.trial_dir(run.run_dir, damaged) / rundir.MODEL_FILE
    path.write_bytes(path.read_bytes()[:100])
    capsys.readouterr()

    built = run.ensemble(select="topk", size=4, progress="plain")
    out = capsys.readouterr().out
    assert f"Ensemble: loading {len(loaded)} the search kept, training" in out
    study = load_study(run.storage_url, "later.ensemble")
    trials = {t.user_attrs["supervisor:member_of"]: t for t in study.get_trials()}
    assert set(trials) == set(members)
    assert all(t.state == TrialState.COMPLETE for t in trials.values())
    for source, t in trials.items():
        took = "from_model" in t.user_attrs
        assert took == (source in loaded and source != damaged), source
        assert ("history" not in t.user_attrs) == took  # not trained: no epoch
    assert "trained instead: " in trials[damaged].user_attrs["from_model_error"]
    # The kept models loaded count as reused from the search, not trained (UQ report).
    assert (built.reused, built.trained) == (len(loaded) - 1, 4 - len(loaded) + 1)
    # A loaded member is its search trial's model: its value and its predictions.
    bench = run.benchmark()
    data = bench.load_data(5)
    by_trial = {t.number: t for t in run.study.get_trials()}
    for member, model in zip(built.members, run.ensemble_models(), strict=True):
        source = int(member.label.split("#")[1].split(",")[0])
        assert member.value == by_trial[source].values[0]
        np.testing.assert_allclose(bench.predict(model, data.x_test), member.outputs["test"])
        if source in loaded and source != damaged:
            assert member.label.endswith(", its kept model)")
            # Kept as the search's file, linked: not a second copy on the disk.
            mine = rundir.trial_dir(run.run_dir / "ensemble", member.trial) / rundir.MODEL_FILE
            assert mine.samefile(rundir.trial_dir(run.run_dir, source) / rundir.MODEL_FILE)
            kept_model = run.model(source)
            np.testing.assert_array_equal(
                bench.predict(kept_model, data.x_test), member.outputs["test"]
            )


def test_a_loaded_kept_model_is_not_judged_again_by_the_constraints(tmp_path: Path) -> None:
    """The search's own model kept the constraints there; loaded by a member on another
    node, its latency measured again there is no new verdict on it (a member trained
    anew is judged)."""
    import optuna
    import yaml

    from supervisor.config import space
    from supervisor.ensemble.aggregate import Member
    from supervisor.ensemble.members import Wanted, judged

    path = tmp_path / "s.yaml"
    bounded = _space("judge", 2, 2) | {"constraints": {"latency_ms": {"max": 1.0}}}
    path.write_text(yaml.safe_dump(bounded))
    exp = space.load(path)
    members = optuna.create_study()
    for _ in range(2):  # both measured 5 ms on the nodes that ran them
        trial = optuna.trial.create_trial(value=0.5, user_attrs={"metrics": {"latency_ms": 5.0}})
        members.add_trial(trial)
    have = [
        (Wanted(0, 1), Member(0, "judge.ensemble", "loaded", 0.5, {}, loaded=True)),
        (Wanted(0, 2), Member(1, "judge.ensemble", "trained", 0.5, {})),
    ]
    kept, out = judged(exp, have, "judge", members)
    assert [m.label for _, m in kept] == ["loaded"]
    assert out == ["trained: breaks latency_ms <= 1 (5)"]
