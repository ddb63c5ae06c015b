"""``supervisor ensemble``'s flags that the selection it is given does not use are refused,
as ``--candidates`` is outside ``--select seeds``: not ignored in silence."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.commands.test_export_output_of_another_run import make_run
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
