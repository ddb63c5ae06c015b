"""``supervisor report --reports-dir``: the report goes where ``search --reports-dir`` and
``ensemble --reports-dir`` put it, not into ./reports; ``-o`` with it is a conflict."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.commands.test_export_output_of_another_run import make_run
from tests.study.test_storage_read_only import refused, supervisor_cli


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path, "toy")
    return tmp_path


def test_report_writes_into_the_reports_dir_it_is_given(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # It was "No such option: --reports-dir": a campaign searched with --reports-dir
    # had its report rewritten into ./reports, beside the one the search wrote.
    assert supervisor_cli(monkeypatch, "report", "toy", "--reports-dir", "out") == 0
    assert capsys.readouterr().out.split() == [str(Path("out") / "toy.html")]
    assert (work / "out" / "toy.html").is_file()
    assert not (work / "reports").exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["-o", "x.html", "--reports-dir", "out"], "--output and --reports-dir: give one"),
        (["--reports-dir", "toy.yaml"], "--reports-dir toy.yaml: toy.yaml is not a directory"),
        (["--reports-dir", "no/such"], "--reports-dir no/such: no does not exist"),
    ],
)
def test_a_bad_reports_dir_is_one_line_and_writes_nothing(
    argv: list[str],
    words: str,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert words in refused(monkeypatch, capsys, work, "report", "toy", *argv)
