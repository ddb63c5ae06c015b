"""``supervisor export RUN --model N``: a kept trained model written as a file to use
without the supervisor, with a manifest naming its trial."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import supervisor
import supervisor.rundir as rundir
from supervisor.cli import main
from tests.study.test_kept_models import kept_space as _space


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


def test_exporting_a_keras_model_prints_none_of_tensorflow_s_start_up_notices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TensorFlow loads in the command's process: its lines (oneDNN is on, twice; the CPU
    features it was not built for) came before the command's own output."""
    from tests.study.test_kept_models import _tiny_regression

    monkeypatch.chdir(tmp_path)
    supervisor.search(_tiny_regression("tf", 1, {}), workers=1, report=False, progress="none")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the user's
    done = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "export", "tf", "--model", "best", "-o", "m.npz"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["m.npz", "m.manifest.json"]
    assert done.stderr == ""


def test_what_else_is_printed_while_the_framework_loads_still_shows() -> None:
    """Only TensorFlow's informational lines are left out: its warnings and errors,
    Python's warnings and the benchmark's own lines are written, in their order."""
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796636238.829894    9815 port.cc:153] oneDNN custom operations are on",
        "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32]"
        " Could not find cuda drivers on your machine, GPU will not be used.",
        "E0000 00:00:1758131045.203198 3722035 cuda_dnn.cc:8579] Unable to register cuDNN",
        "W0000 00:00:1758131045.228000 3722035 gpu_device.cc:2341] Cannot dlopen some GPU",
    ]
    code = (
        "import os, sys, warnings\n"
        "from supervisor.execution.quiet_start import quiet_framework_start\n"
        "with quiet_framework_start():\n"
        "    assert os.environ['TF_CPP_MIN_LOG_LEVEL'] == '1'  # TF's own INFO lines off\n"
        f"    for line in {lines!r}:\n"
        "        os.write(2, line.encode() + b'\\n')\n"
        "    warnings.warn_explicit('a deprecation', UserWarning, 'bench.py', 3)\n"
        "    print('the benchmark line', file=sys.stderr)\n"
        "print('TF_CPP_MIN_LOG_LEVEL' in os.environ)  # the caller's environment, as it was\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "False\n"
    assert done.stderr.splitlines() == [
        *lines[3:],
        "bench.py:3: UserWarning: a deprecation",
        "the benchmark line",
    ]
