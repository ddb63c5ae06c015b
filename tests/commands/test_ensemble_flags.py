"""``supervisor ensemble``'s flags that the selection it is given does not use are refused,
as ``--candidates`` is outside ``--select seeds``: not ignored in silence."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.commands.test_export_output_of_another_run import make_run
from tests.commands.test_hostile_cli import TEMPLATE_FILES
from tests.study.test_storage_read_only import refused


@pytest.mark.parametrize("select", ["topk", "seeds"])
def test_pool_outside_greedy_is_refused(
    select: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # ``--select topk --pool 3`` built the 5 best trials' ensemble, as if --pool were not given.
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path, "toy")
    err = refused(monkeypatch, capsys, tmp_path, "ensemble", "toy", "--select", select,
                  "--pool", "3")  # fmt: skip
    assert "--pool 3: applies to --select greedy (and auto, where it picks greedy) only" in err


def test_pool_outside_the_space_files_greedy_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The space file's ``ensemble: {select: topk}`` and ``--pool 7``: a top-5 ensemble, the
    # pool ignored in silence (check_flags saw no --select).
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path, "toy")
    classifier = TEMPLATE_FILES["clf_fail.yaml"]  # a benchmark that has ensembles
    (tmp_path / "toy.yaml").write_text(classifier + "ensemble: {select: topk}\n")
    err = refused(monkeypatch, capsys, tmp_path, "ensemble", "toy", "--pool", "7")
    assert "--pool 7: applies to select greedy only; the space file's ensemble.select" in err
