"""The storage's password stays out of the driver jobs ``supervisor submit`` queues.

sbatch hands a job the environment it ran in, and Slurm keeps it (its state files, and
``sacct --env-vars`` where it accounts job environments): ``PGPASSWORD`` or ``MYSQL_PWD``
went there with every link of the chain. Batch commands now run without them
(``unanswered.run``); the driver job reads the password on its node from the database
client's own file, and a campaign whose password is in the variable alone is refused
before anything is queued, not left to fail to connect once its job starts.
"""

from __future__ import annotations

import os
from pathlib import Path

import supervisor.rundir as rundir
from supervisor.errors import UserError

# PostgreSQL's libpq reads the password from PGPASSWORD, else from its password file.
PG_SCHEMES = ("postgresql", "postgres")
# MySQL's clients read MYSQL_PWD (mysqlclient), else an option file the URL names.
MYSQL_SCHEMES = ("mysql", "mariadb")
MYSQL_FILE = "read_default_file"


def storage_of(search_args: list[str], run_dir: Path) -> str | None:
    """The storage the driver job's search opens: its ``--storage``, else the run's."""
    for i, arg in enumerate(search_args):
        if arg == "--storage" and i + 1 < len(search_args):
            return search_args[i + 1]
        if arg.startswith("--storage="):
            return arg.partition("=")[2]
    if (run_dir / rundir.RUN_FILE).is_file():
        return rundir.read_record(run_dir).storage
    return None


def check_driver_password(storage: str | None) -> None:
    """Refuse a database server whose password this user keeps only in the variable that
    the driver job will not get."""
    if storage is None or not rundir.server_storage(storage):
        return
    scheme = storage.partition("://")[0].split("+")[0].lower()
    if scheme in PG_SCHEMES and "PGPASSWORD" in os.environ:
        file = os.environ.get("PGPASSFILE") or "~/.pgpass"
        if not Path(file).expanduser().is_file():
            raise UserError(_refused("PGPASSWORD", f"put the password in {file} (mode 0600)"))
    named = f"{MYSQL_FILE}=" in storage.partition("?")[2]
    if scheme in MYSQL_SCHEMES and "MYSQL_PWD" in os.environ and not named:
        fix = f"put the password in an option file the URL names (?{MYSQL_FILE}=PATH)"
        raise UserError(_refused("MYSQL_PWD", fix))


def _refused(variable: str, fix: str) -> str:
    return (
        f"{variable} is set, but the driver job does not get it (sbatch would hand it to"
        f" Slurm, which keeps a job's environment): {fix}, which the driver job reads on"
        " its node"
    )
