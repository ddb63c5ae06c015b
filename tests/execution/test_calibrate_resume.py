"""A calibrate stopped half-way (Ctrl-C, its job's walltime) keeps the packings it had
measured: the next one, under the same conditions, measures only the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from supervisor.commands.calibration import calibrate as command
from supervisor.errors import UserError
from supervisor.execution import calibrate

TOY = "tests.toy_classifier:ToyClassifier"


class Stopped(BaseException):
    """Stands for the Ctrl-C or the walltime's signal (pytest takes KeyboardInterrupt)."""


def test_a_stopped_calibrate_resumes_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An hour of packings on a big node was lost to a Ctrl-C in the last one, and the
    next calibrate measured every one of them again."""
    measured: list[tuple[int, int]] = []
    stop_at = [(2, 1)]
    timeouts: list[float | None] = []

    def measure(target: str, options: Any, packing: Any, *args: Any, **kw: Any) -> Any:
        if (packing.threads, packing.trials) in stop_at:
            raise Stopped
        measured.append((packing.threads, packing.trials))
        timeouts.append(kw["timeout"])
        return calibrate.Measurement(packing, [100.0 * packing.threads] * packing.trials)

    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(calibrate, "usable_cores", lambda: [0, 1])
    monkeypatch.setattr(calibrate, "measure", measure)
    with pytest.raises(Stopped):
        command(TOY, [], False, 1, None, None)
    assert measured == [(1, 1), (1, 2)]
    # Other options are other measurements: none of the stopped ones is taken for them.
    with pytest.raises(Stopped):
        command(TOY, ["delay=0.5"], False, 1, None, None)
    assert measured == [(1, 1), (1, 2), (1, 1), (1, 2)]
    capsys.readouterr()
    stop_at.clear()
    command(TOY, ["delay=0.5"], False, 1, None, None)  # the same conditions again
    assert measured == [(1, 1), (1, 2), (1, 1), (1, 2), (2, 1)]
    assert timeouts[-1] == timeouts[1]  # the lone trial's limit, kept with it
    out = capsys.readouterr().out.splitlines()
    kept = "  (measured by the calibrate that was stopped)"
    assert out[1].endswith(kept) and out[2].endswith(kept) and not out[3].endswith(kept)
    assert out[4] == "recommended: 2 trial(s) per node x 1 thread(s) each (200 samples/s)"
    (saved,) = tmp_path.iterdir()  # the result; its progress went once it was saved
    assert saved.name.startswith(f"{TOY}@") and not saved.name.endswith(".partial.json")


def test_a_calibrate_of_another_core_count_leaves_a_stopped_one_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two allocations of one node (a --cores 2 check, the whole node) keep apart."""
    measured: list[tuple[int, int]] = []
    stop_at = [(2, 1)]

    def measure(target: str, options: Any, packing: Any, *args: Any, **kw: Any) -> Any:
        if (packing.threads, packing.trials) in stop_at and args[1] == [0, 1]:  # --cores 2
            raise Stopped
        measured.append((packing.threads, packing.trials))
        return calibrate.Measurement(packing, [100.0] * packing.trials)

    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(calibrate, "usable_cores", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(calibrate, "measure", measure)
    with pytest.raises(Stopped):
        command(TOY, [], False, 1, 2, None)
    command(TOY, [], False, 1, None, None)  # the whole node, measured in full meanwhile
    del measured[:], stop_at[:]
    command(TOY, [], False, 1, 2, None)
    assert measured == [(2, 1)]
    capsys.readouterr()


def test_a_ctrl_c_says_what_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C printed only "interrupted": the hour measured seemed lost."""

    def measure(target: str, options: Any, packing: Any, *args: Any, **kw: Any) -> Any:
        if packing.trials == 2:
            raise KeyboardInterrupt
        return calibrate.Measurement(packing, [100.0])

    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(calibrate, "usable_cores", lambda: [0, 1])
    monkeypatch.setattr(calibrate, "measure", measure)
    with pytest.raises(KeyboardInterrupt):
        command(TOY, [], False, 1, None, None)
    assert capsys.readouterr().err == (
        "stopped: the 1 packing(s) measured are kept; the same command measures only the rest\n"
    )


def test_more_cores_than_the_node_has_are_refused_before_measuring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--cores 8` on a node of 4 measured the 4, saved as a 4-core calibration, and
    said nothing of the 8-core allocation it was asked for."""
    measured: list[Any] = []
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(calibrate, "usable_cores", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(calibrate, "measure", lambda *args, **kw: measured.append(args))
    with pytest.raises(UserError, match=r"^--cores 8: this node has 4 usable core\(s\)"):
        command(TOY, [], False, 1, 8, None)
    assert measured == [] and list(tmp_path.iterdir()) == []
