"""``keep_models`` with several objectives: a worker writes the model of a trial only when
it can still be among the K kept. With no single bar every complete trial wrote its model
and the driver removed it at once: at 100,000 trials, 100,000 models written to a parallel
file system and unlinked (their creation, data and removal), for K kept."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import supervisor
from supervisor.execution.trial import KeepModel
from supervisor.study import attrs
from supervisor.study.kept_models import KeptModels, pareto_ranks


def test_a_trial_every_kept_model_dominates_writes_none(tmp_path: Path) -> None:
    kept = KeptModels(tmp_path, 2, ["minimize", "maximize"])
    assert kept.next_trial().wanted(9.0, {}, [9.0, 0.0])  # fewer than K kept: any
    kept.losses = {0: np.array([1.0, -0.8]), 1: np.array([2.0, -0.9])}  # kept: (1, .8), (2, .9)
    keep = kept.next_trial()
    assert not keep.wanted(3.0, {}, [3.0, 0.7])  # both dominate it: never among the 2 best
    assert keep.wanted(1.5, {}, [1.5, 0.7])  # trial 1 does not dominate it
    assert keep.wanted(3.0, {}, [3.0, 0.95])  # on the front
    assert keep.wanted(2.0, {}, [2.0, 0.9])  # equal to one kept: not dominated by it
    bounded = KeepModel(bounds=(("size", None, 1.0),), kept=keep.kept, signs=keep.signs)
    assert not bounded.wanted(0.5, {"size": 2.0}, [0.5, 1.0])  # the constraints still rule


def _ranked_first(values: list[list[float]]) -> int:
    """The trial the driver keeps with K = 1 (Pareto rank, then the first objective)."""
    losses = np.array([[v[0], -v[1]] for v in values])
    ranks = pareto_ranks(losses)
    return min(range(len(values)), key=lambda i: (ranks[i], losses[i, 0], i))


def test_a_search_writes_fewer_models_and_keeps_the_same_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    space: dict[str, Any] = {
        "study": "two",
        "benchmark": {"name": "tests.toy_classifier:ToyClassifier", "options": {"n": 120}},
        "objectives": ["val_nll", "val_accuracy"],
        "params": {"lr": {"type": "float", "low": 0.001, "high": 1.0, "log": True}},
        "budget": {"trials": 16, "epochs": 2},
        "sampler": "random",
        "seed": 5,
        "keep_models": 1,
    }
    run = supervisor.search(space, workers=1, report=False, progress="none")
    trials = [t for t in run.study.get_trials() if t.values is not None]
    written = [t.number for t in trials if t.user_attrs.get(attrs.MODEL)]
    # Before: all 16 (each written, then removed by the driver but the best).
    assert len(written) < len(trials) // 2, written
    best = trials[_ranked_first([list(t.values) for t in trials])].number
    assert run.kept_models == [best]
    assert os.listdir(run.run_dir / "trials") == [f"{best:06d}"]
