"""The driver jobs of ``supervisor submit`` get no storage password.

sbatch hands a job the environment it ran in, and Slurm keeps it (state files, ``sacct
--env-vars``): PGPASSWORD went there with every link of a chain. A campaign on a database
server whose password is in the variable alone is refused before anything is queued.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from supervisor.commands.submit import SubmitOptions, submit
from supervisor.errors import UserError

SBATCH = '#!/bin/sh\nenv > "$(dirname "$0")/env"\necho 4242\n'


@pytest.fixture
def queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake sbatch that keeps the environment its job would get, an empty queue; a home
    without a password file; a password in PGPASSWORD and MYSQL_PWD."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(SBATCH)
    (bin_dir / "squeue").write_text("#!/bin/sh\n")  # no driver job of the study queued
    for tool in ("sbatch", "squeue"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PGPASSFILE", raising=False)
    monkeypatch.setenv("PGPASSWORD", "pg-secret")
    monkeypatch.setenv("MYSQL_PWD", "my-secret")
    monkeypatch.chdir(tmp_path)
    return bin_dir


def options(*search_args: str) -> SubmitOptions:
    return SubmitOptions("toy.yaml", "slurm", list(search_args), "toy")


def test_the_driver_job_is_submitted_without_the_storage_password(queue: Path) -> None:
    assert submit(options())[0] == "4242"
    env = (queue / "env").read_text()
    assert "pg-secret" not in env and "my-secret" not in env
    assert os.environ["PGPASSWORD"] == "pg-secret"  # this process's own is left alone


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://me@db:5432/hpo", "PGPASSWORD is set, but the driver job does not get it"),
        ("mysql+pymysql://me@db/hpo", "MYSQL_PWD is set, but the driver job does not get it"),
    ],
)
def test_a_password_only_in_the_variable_is_refused_before_anything_is_queued(
    queue: Path, tmp_path: Path, url: str, said: str
) -> None:
    with pytest.raises(UserError, match=said) as caught:
        submit(options("--storage", url))
    assert "\n" not in str(caught.value) and "secret" not in str(caught.value)
    assert not (queue / "env").exists() and not (tmp_path / "runs" / "toy").exists()


def test_a_password_file_is_what_the_driver_job_reads(queue: Path, tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".pgpass").write_text("db:5432:hpo:me:pg-secret\n")
    assert submit(options("--storage=postgresql://me@db:5432/hpo"))[0] == "4242"
    my = "mysql://me@db/hpo?read_default_file=~/.my.cnf"
    assert submit(options("--storage", my, "--study", "other"))[0] == "4242"
    assert "pg-secret" not in (queue / "env").read_text()
