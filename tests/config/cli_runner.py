"""Run many refused commands through the real entry point, fast, and see what they left.

Starting Python for each of 120 files costs a minute and more on 2 cores. One interpreter
imports the command once and forks a child per case that runs the real entry point,
``supervisor.cli:main``, in that case's directory with its own stdout and stderr. The
child writes no bytecode: a plugin module imported from the case's directory must not
leave a ``__pycache__`` that would read as a file the command wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

RUNNER = r"""
import contextlib, io, json, sys
sys.dont_write_bytecode = True
import dask_jobqueue, distributed, optuna, tests.toy_benchmark
import supervisor.cli, supervisor.clusters.profile
import supervisor.commands.search, supervisor.study.driver
from tests.config.cli_runner import run_forked

with contextlib.redirect_stdout(io.StringIO()):  # imports what typer loads on first use
    supervisor.cli.app(["search", "--help"], standalone_mode=False)

# 60 s: an input wrongly accepted must not hang the suite.
results = [run_forked(cwd, args, out_dir, 60) for cwd, args, out_dir in json.load(sys.stdin)]
print(json.dumps(results))
"""


def run_forked(cwd: str, args: list[str], out_dir: str, limit: int) -> int:
    """Exit code of ``supervisor ARGS`` run by the real entry point in a forked child, in
    ``cwd``, its stdout and stderr in ``out_dir``; killed (SIGALRM) after ``limit`` s."""
    import os
    import signal
    import traceback

    import supervisor.cli

    pid = os.fork()
    if pid == 0:
        signal.alarm(limit)
        os.chdir(cwd)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            os.dup2(os.open(os.path.join(out_dir, name), os.O_WRONLY | os.O_CREAT), fd)
        sys.argv = ["supervisor", *args]
        code = 0
        try:
            supervisor.cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    before: dict[str, bytes | None]
    after: dict[str, bytes | None]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its content: proves nothing was written."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def run_cases(jobs: list[tuple[Path, list[str], Path]]) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of ``supervisor ARGS`` run in each (cwd, args, out_dir)."""
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([(str(cwd), args, str(out)) for cwd, args, out in jobs]),
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    codes = json.loads(done.stdout)
    return [
        (code, _read(out / "stdout"), _read(out / "stderr"))
        for (_, _, out), code in zip(jobs, codes, strict=True)
    ]


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
