"""An install from the wheel (a site's shared module, not a checkout) has what a checkout has."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout, unpacked as pip installs a pure-Python wheel."""
    out = tmp_path_factory.mktemp("wheel")
    # From a copy: an in-tree build would reuse (and leave) the checkout's build/ folder.
    source = out / "source"
    junk = (".*", "build", "dist", "runs", "reports", "*.egg-info", "__pycache__")
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*junk))
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        cwd=out,
    )
    (wheel,) = out.glob("supervisor-*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def test_named_launcher_profiles_load_from_an_installed_wheel(
    installed: Path, tmp_path: Path
) -> None:
    # From a folder without launchers/ of its own, as a user's project folder is.
    code = (
        "import json, supervisor\n"
        "from supervisor.clusters import profile\n"
        "names = sorted(p.stem for p in profile.PROJECT_LAUNCHERS.glob('*.yaml'))\n"
        "kinds = {n: profile.load(n).kind for n in names}\n"
        "print(json.dumps({'package': supervisor.__file__, 'kinds': kinds}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(installed)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert Path(seen["package"]).is_relative_to(installed)  # the wheel's copy, not the checkout
    shipped = sorted(p.stem for p in (ROOT / "launchers").glob("*.yaml"))
    assert sorted(seen["kinds"]) == shipped
    assert seen["kinds"]["slurm"] == "slurm" and seen["kinds"]["pbs"] == "pbs"
