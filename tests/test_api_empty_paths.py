"""The API refuses an empty path as the command line does (``os.environ.get("RUNS", "")``
in a script): ``Path("")`` is the current folder, where the search wrote its run."""

from __future__ import annotations

from pathlib import Path

import pytest

import supervisor
from tests.commands.test_export_output_of_another_run import make_run


def test_an_empty_path_is_refused_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path, "toy")  # its space: toy.yaml
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(supervisor.UserError, match=r"^runs_dir '': expected a path \('\.' for"):
        supervisor.search("toy.yaml", runs_dir="", workers=1, progress="none")
    with pytest.raises(supervisor.UserError, match=r"^reports_dir ' ': expected a path"):
        supervisor.search("toy.yaml", reports_dir=" ", workers=1, progress="none")
    with pytest.raises(supervisor.UserError, match=r"^runs_dir '': expected a path"):
        supervisor.open_run("toy", runs_dir="")
    with pytest.raises(supervisor.UserError, match=r"^output '': expected a path"):
        supervisor.open_run("toy").report("")
    assert sorted(tmp_path.rglob("*")) == before
