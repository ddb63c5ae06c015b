"""A refused command's message is one line whatever the user typed: a newline or a
terminal escape in a path or value is shown escaped, not written to the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.study.test_storage_read_only import refused


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["status", "to\ny"], "error: to\\ny: no run found"),  # was two lines
        (["status", "\x1b[2J\x1b[31mx"], "error: \\x1b[2J\\x1b[31mx: no run found"),
        (["search", "sp\u2028ace.yaml"], "error: sp\\u2028ace.yaml: no such file"),
    ],
)
def test_control_characters_in_an_error_are_escaped(
    argv: list[str],
    shown: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    err = refused(monkeypatch, capsys, tmp_path, *argv)
    assert shown in err and "\x1b" not in err
