"""``search --dry-run`` and ``validate`` check the resume in the storage the search would
resume, wherever it is: the storage the run records, a database server (read only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.commands.test_export_output_of_another_run import make_run
from tests.study.test_storage_read_only import refused, supervisor_cli

INTEGER_X = "benchmark: {name: tests.toy_benchmark:ToyBenchmark}\nobjectives: [loss]\n" + (
    "params:\n  x: {type: int, low: -4, high: 4}\nbudget: {trials: 3, epochs: 1}\n"
)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path, "lite", storage="sqlite:///lite.db")  # its space: lite.yaml
    return tmp_path


def test_a_dry_run_without_the_runs_storage_is_refused_as_the_search_is(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # It said "lite.yaml: valid"; the search then refused to resume on another storage.
    err = refused(monkeypatch, capsys, work, "search", "lite.yaml", "--dry-run")
    assert f"runs/lite was run with storage sqlite:///{work / 'lite.db'}; this command" in err
    argv = ("search", "lite.yaml", "--storage", "sqlite:///lite.db", "--dry-run")
    assert supervisor_cli(monkeypatch, *argv) == 0
    assert "lite.yaml: valid" in capsys.readouterr().out


def test_validate_checks_the_resume_in_the_storage_the_run_records(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # validate has no --storage: it looked for a journal in runs/lite, found none and
    # said "valid" to a space whose x the study's trials hold as a float.
    (work / "lite.yaml").write_text(INTEGER_X)
    err = refused(monkeypatch, capsys, work, "validate", "lite.yaml")
    assert "lite.yaml: params.x: the study's trials have it as a float" in err


def test_a_dry_run_reaches_the_database_server_the_search_would(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A server URL was not even opened: "valid", then the search could not reach it.
    url = "postgresql://someone@127.0.0.1:1/campaigns"
    err = refused(monkeypatch, capsys, work, "search", "lite.yaml", "--study", "new",
                  "--storage", url, "--dry-run")  # fmt: skip
    assert "cannot open storage 'postgresql://someone@127.0.0.1:1/campaigns'" in err
