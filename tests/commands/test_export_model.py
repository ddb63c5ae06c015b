"""``supervisor export RUN --model N``: a kept trained model written as a file to use
without the supervisor, with a manifest naming its trial."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import supervisor
import supervisor.rundir as rundir
from supervisor.cli import main
from tests.study.test_kept_models import _space


def run_cli(*args: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``supervisor ARGS`` through the real entry point, in this process: (exit code,
    stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["supervisor", *args])
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def kept_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> supervisor.Run:
    monkeypatch.chdir(tmp_path)
    return supervisor.search(_space("keep", 5, 2), workers=1, report=False, progress="none")


def test_the_best_model_is_exported_with_a_manifest_of_its_trial(
    kept_run: supervisor.Run,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    best = kept_run.kept_models[0]
    code, out, err = run_cli(
        "export", "keep", "--model", "best", "-o", "best.npz", monkeypatch=monkeypatch,
        capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    assert out.split() == ["best.npz", "best.manifest.json"]
    saved = rundir.trial_dir(kept_run.run_dir, best) / rundir.MODEL_FILE
    with np.load(tmp_path / "best.npz") as got, np.load(saved) as want:
        assert sorted(got.files) == sorted(want.files)
        for name in want.files:
            np.testing.assert_array_equal(got[name], want[name])
    manifest = json.loads((tmp_path / "best.manifest.json").read_text())
    trial = kept_run.trials.set_index("number").loc[best]
    assert manifest["model"]["trial"] == best and manifest["model"]["study"] == "keep"
    assert manifest["model"]["params"]["lr"] == pytest.approx(trial["params_lr"])
    assert manifest["model"]["values"]["val_nll"] == pytest.approx(trial["val_nll"])
    assert manifest["model"]["benchmark"] == "tests.toy_classifier:ToyClassifier"
    assert manifest["run"]["sessions"]  # the run's own manifest travels with it
    assert (tmp_path / "best.manifest.json").stat().st_mode & 0o077 == 0  # as the run's own

    # By number, to the run directory by default, and again over its own earlier file.
    other = kept_run.kept_models[1]
    for _ in range(2):
        code, out, err = run_cli(
            "export", "keep", "--model", str(other), "--format", "npz",
            monkeypatch=monkeypatch, capsys=capsys,
        )  # fmt: skip
        assert code == 0, err
        assert out.split()[0] == str(kept_run.run_dir / f"model-{other}.npz")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "x"], "--model x: expected a trial number or 'best'"),
        (["--model", "-3"], "--model -3: expected a trial number or 'best'"),
        (["--model", "0", "--format", "csv"], "--format csv: a model is exported as keras or npz"),
        (["--model", "0", "-o", "m.h5"], "--output m.h5: a model file ends in .keras or .npz"),
        (["--model", "0", "-o", "m.keras", "--format", "npz"], "a .keras file name, but --format"),
        (["--model", "99"], "trial 99: no such trial in study 'keep'"),
        # The toy model is numpy's: no framework file, and the arrays are offered instead.
        (["--model", "best"], "does not implement the optional save_model(): export its arrays"),
        (["--model", "best", "-o"], "would overwrite"),
    ],
)
def test_bad_model_exports_are_one_line_and_write_nothing(
    kept_run: supervisor.Run,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    if message == "would overwrite":  # the kept model's own file
        kept = rundir.trial_dir(kept_run.run_dir, kept_run.kept_models[0]) / rundir.MODEL_FILE
        args = [*args, str(kept)]
        message = "would overwrite a file of the run (model.npz)"
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    code, _, err = run_cli("export", "keep", *args, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert message in err
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_model_that_was_not_kept_says_which_are(
    kept_run: supervisor.Run,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    frame = kept_run.trials
    dropped = next(n for n in frame["number"] if n not in kept_run.kept_models)
    code, _, err = run_cli(
        "export", "keep", "--model", str(dropped), monkeypatch=monkeypatch, capsys=capsys
    )
    kept = ", ".join(map(str, kept_run.kept_models))
    assert code == 2 and f"trial {dropped}: its trained model was not kept" in err
    assert f"kept: {kept}" in err
