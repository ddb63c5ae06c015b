"""Ensemble members trained with other benchmark options (a resume changed them; each
member trains with its search trial's): where their inputs differ, their predictions are
not of one data set and do not average; where only the decoding options differ, every
member and the ensemble are decoded alike, with the run's current options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import supervisor
from supervisor.ensemble.aggregate import Member, evaluate
from tests.study.test_kept_models import kept_space as _space


def test_members_predicting_other_inputs_are_left_out_not_averaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The toy's ``spread`` (its noise) changes the inputs, not the labels: the members of
    both spreads were averaged as one ensemble, its scores of no data set. Those of the
    best member's inputs are kept, the others named."""
    monkeypatch.chdir(tmp_path)
    supervisor.search(_space("spread", 2, 0), workers=1, report=False, progress="none")
    noisier = _space("spread", 4, 0)
    noisier["benchmark"]["options"]["spread"] = 2.5
    run = supervisor.search(noisier, workers=1, report=False, progress="none")
    spread = {n: 1.3 if n < 2 else 2.5 for n in range(4)}  # trials 0, 1 before the resume
    capsys.readouterr()
    built = run.ensemble(select="topk", size=4, progress="plain")
    sources = [int(m.label.split("#")[1].split(",")[0]) for m in built.members]
    ranked = list(run.trials.sort_values(["val_nll", "number"])["number"])
    assert {spread[n] for n in sources} == {spread[ranked[0]]}  # the best's spread alone
    left = [n for n in ranked[:4] if spread[n] != spread[ranked[0]]]
    assert left and sorted(sources + left) == sorted(ranked[:4])
    out = capsys.readouterr().out
    assert f"Ensemble: {len(left)} member(s) left out, predicting other inputs than search" in out
    assert len(built.excluded) == len(left)
    assert all("predicting other inputs" in e for e in built.excluded)


def _member(label: str, digest: int) -> Member:
    probs = np.array([[0.7, 0.3], [0.2, 0.8]])
    y = np.array([0, 1])
    outputs = {"val": probs, "test": probs, "y_val": y, "y_test": y}
    outputs["x_val_digest"] = outputs["x_test_digest"] = np.full(16, digest, np.uint8)
    return Member(0, "s", label, 0.1, outputs)


def test_members_without_digests_are_not_judged_by_them() -> None:
    older = _member("a", 1)
    for key in ("x_val_digest", "x_test_digest"):
        del older.outputs[key]  # saved before digests were
    assert evaluate("classification", [older, _member("b", 2)]).kind == "classification"
    with pytest.raises(ValueError, match=r"^c predicted other inputs than b "):
        evaluate("classification", [older, _member("b", 2), _member("c", 3)])
