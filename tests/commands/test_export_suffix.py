"""``export -o FILE`` without ``--format`` writes the format its file name says: ``-o
t.parquet`` was refused as "a parquet file name, but --format csv", a flag nobody gave
(the refusals of other suffixes are rows in tests/bad_inputs/cli/export.yml)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.commands.test_export_output_of_another_run import make_run
from tests.study.test_storage_read_only import supervisor_cli


@pytest.mark.parametrize("name", ["t.parquet", "T.PARQUET"])
def test_the_file_name_alone_chooses_parquet(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path, "toy")
    assert supervisor_cli(monkeypatch, "export", "toy", "-o", name) == 0
    assert name in capsys.readouterr().out
    assert pd.read_parquet(tmp_path / name)["params_x"].tolist() == [1.0]
