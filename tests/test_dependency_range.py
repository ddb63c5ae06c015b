"""The oldest versions pyproject.toml allows: the paths that differ from the newest.

The shared environment has the newest of each dependency; these tests put the code on the
path an older one takes (a name it lacks), in a fresh interpreter where that changes
module state.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Typer before 0.27.3 has no ``typer.exceptions`` (before 0.26 it uses click itself, from
# 0.26 its own copy of click): load typer, then make that module unimportable.
WITHOUT_TYPER_EXCEPTIONS = """
import sys
import typer
sys.modules.pop("typer.exceptions", None)
if hasattr(typer, "exceptions"):
    del typer.exceptions

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name == "typer.exceptions":
            raise ModuleNotFoundError("No module named 'typer.exceptions'")

sys.meta_path.insert(0, Missing())
sys.argv = ["supervisor", *sys.argv[1:]]
from supervisor.cli import main
main()
"""


def test_a_usage_error_is_one_line_with_a_typer_without_typer_exceptions(
    tmp_path: Path,
) -> None:
    # Such a typer made every command fail to start (ModuleNotFoundError, exit 1).
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TYPER_EXCEPTIONS, "search", "--no-such-flag"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: No such option")
    assert "--no-such-flag" in line
    assert line.endswith("(see supervisor search --help)")
    assert list(tmp_path.iterdir()) == []
