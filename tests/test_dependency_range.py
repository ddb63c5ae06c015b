"""The oldest versions pyproject.toml allows: the paths that differ from the newest.

The shared environment has the newest of each dependency; these tests put the code on the
path an older one takes (a name it lacks), in a fresh interpreter where that changes
module state.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

# Typer before 0.27.3 has no ``typer.exceptions`` (before 0.26 it uses click itself, from
# 0.26 its own copy of click): load typer, then make that module unimportable.
WITHOUT_TYPER_EXCEPTIONS = """
import sys
import typer
sys.modules.pop("typer.exceptions", None)
if hasattr(typer, "exceptions"):
    del typer.exceptions

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name == "typer.exceptions":
            raise ModuleNotFoundError("No module named 'typer.exceptions'")

sys.meta_path.insert(0, Missing())
sys.argv = ["supervisor", *sys.argv[1:]]
from supervisor.cli import main
main()
"""


def test_a_usage_error_is_one_line_with_a_typer_without_typer_exceptions(
    tmp_path: Path,
) -> None:
    # Such a typer made every command fail to start (ModuleNotFoundError, exit 1).
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TYPER_EXCEPTIONS, "search", "--no-such-flag"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: No such option")
    assert "--no-such-flag" in line
    assert line.endswith("(see supervisor search --help)")
    assert list(tmp_path.iterdir()) == []


def _savez_before_2_2(compress: bool) -> Any:
    """numpy < 2.2's ``savez``: it has no ``allow_pickle``, every keyword is an array."""
    try:
        from numpy.lib._npyio_impl import _savez
    except ImportError:  # numpy 1.x (then this is its own savez)
        from numpy.lib.npyio import _savez

    def savez(file: Any, *args: Any, **kwds: Any) -> None:
        _savez(file, args, kwds, compress)

    return savez


@pytest.fixture
def numpy_before_2_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(np, "savez", _savez_before_2_2(False))
    monkeypatch.setattr(np, "savez_compressed", _savez_before_2_2(True))


@pytest.mark.usefixtures("numpy_before_2_2")
def test_a_checkpoint_resumes_with_a_numpy_before_2_2(tmp_path: Path) -> None:
    from supervisor.benchmarks import Checkpoint

    # Every checkpoint read back as damaged ("arrays missing"): trials restarted at 0.
    saved = Checkpoint(tmp_path / "ck", 1, "t")
    saved.save(0, [{"epoch": 0.0}], {"w": np.ones(3)})
    restored = Checkpoint(tmp_path / "ck", 1, "t").load()
    assert restored is not None and restored.epoch == 0
    assert list(restored.arrays) == ["w"]


@pytest.mark.usefixtures("numpy_before_2_2")
@pytest.mark.parametrize("compress", [False, True])
def test_saved_arrays_are_only_the_given_ones_with_a_numpy_before_2_2(
    tmp_path: Path, compress: bool
) -> None:
    from supervisor.benchmarks.checkpoint import save_npz

    # A kept model had one array too many ('allow_pickle'): set_weights refused it.
    save_npz(tmp_path / "model.npz", {"b": np.zeros(2), "a": [1.0]}, compress)
    with np.load(tmp_path / "model.npz", allow_pickle=False) as saved:
        assert sorted(saved.files) == ["a", "b"]
    with pytest.raises(ValueError, match=r"array 'x' holds Python objects"):
        save_npz(tmp_path / "bad.npz", {"x": np.array([{}], dtype=object)}, compress)


def test_files_saved_before_the_fix_under_a_numpy_before_2_2_load(tmp_path: Path) -> None:
    """Kept models, checkpoints, predictions and artifacts an older supervisor wrote under
    numpy < 2.2 hold one more array, 'allow_pickle': such a model loaded with an array too
    many (set_weights refused it: an ensemble member trained again, ``supervisor export
    --model`` failed), and such a checkpoint read back as damaged (trials restarted at 0)."""
    from supervisor.benchmarks import Checkpoint
    from supervisor.benchmarks.checkpoint import CHECKPOINT_ARRAYS
    from supervisor.execution.execute import _load_trained
    from supervisor.execution.trial import Trained, TrialResult
    from tests.toy_classifier import ToyClassifier

    old_savez = _savez_before_2_2(False)
    bench = ToyClassifier({})
    model = bench.build_model({"lr": 0.1}, 1)
    old_savez(tmp_path / "model.npz", allow_pickle=False, **bench.model_arrays(model))
    fresh = bench.build_model({"lr": 0.1}, 2)
    result = TrialResult(0, "failed")
    assert _load_trained(bench, fresh, Trained(str(tmp_path / "model.npz"), {}), result), (
        result.extra
    )
    assert np.array_equal(fresh.w, model.w)

    Checkpoint(tmp_path / "ck", 1, "t").save(0, [{"epoch": 0.0}], {"w": np.ones(3)})
    (arrays,) = (tmp_path / "ck").glob(f"*/{CHECKPOINT_ARRAYS}")
    with open(arrays, "wb") as f:
        old_savez(f, allow_pickle=False, w=np.ones(3))
    restored = Checkpoint(tmp_path / "ck", 1, "t").load()
    assert restored is not None and restored.epoch == 0
    assert list(restored.arrays) == ["w"]
