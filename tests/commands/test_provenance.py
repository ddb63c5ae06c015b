"""The run manifest: which code, packages, host and command produced a campaign."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import supervisor
from supervisor.commands import provenance
from tests.test_api import toy_space

ROOT = Path(__file__).resolve().parents[2]


def test_each_session_is_appended_with_code_versions_and_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    supervisor.search(toy_space(trials=2), workers=1, progress="none")
    run = supervisor.search(toy_space(trials=2), trials=3, workers=1, progress="none")
    manifest = run.manifest
    assert manifest is not None and len(manifest["sessions"]) == 2
    last = manifest["sessions"][-1]
    assert last["packages"]["optuna"] and last["packages"]["distributed"]
    assert last["python"] == sys.version.split()[0]
    assert last["experiment"]["budget"]["trials"] == 3
    assert last["benchmark"]["file"].endswith("toy_benchmark.py")
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    if head:  # a git checkout: the commit of the code that ran is recorded
        assert last["code"]["supervisor"]["commit"] == head
        assert last["code"]["benchmark"]["commit"] == head
    assert "local cluster" in last["cluster"] and last["launcher"] is None
    report = (tmp_path / "reports" / "api-toy.html").read_text()
    assert "code (supervisor)" in report and "manifest.json" in report


def test_export_carries_the_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    supervisor.search(toy_space(trials=2), workers=1, report=False, progress="none")
    done = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "export", "api-toy"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    beside = tmp_path / "runs" / "api-toy" / "trials.manifest.json"
    assert json.loads(beside.read_text())["sessions"][0]["experiment"]["study"] == "api-toy"


def test_a_damaged_manifest_is_one_line(tmp_path: Path) -> None:
    (tmp_path / provenance.MANIFEST_FILE).write_text("{not json")
    with pytest.raises(supervisor.UserError, match="not a readable manifest"):
        provenance.read(tmp_path)


@pytest.mark.parametrize("damage", ["not json", "a directory"])
def test_a_resume_with_a_damaged_manifest_is_refused_before_it_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    """The resume used to write the journal and run.json, then stop on the manifest
    (exit 1 with a raw OSError where it was a directory)."""
    monkeypatch.chdir(tmp_path)
    supervisor.search(toy_space(trials=2), workers=1, report=False, progress="none")
    run_dir = tmp_path / "runs" / "api-toy"
    manifest = run_dir / provenance.MANIFEST_FILE
    manifest.unlink()
    if damage == "a directory":
        manifest.mkdir()
    else:
        manifest.write_text("{not json")
    before = {p: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(supervisor.UserError, match="not a readable manifest"):
        supervisor.search(toy_space(trials=2), trials=3, workers=1, progress="none")
    assert {p: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_outside_a_git_checkout_there_is_no_commit(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("")
    assert provenance.git_state(tmp_path / "m.py") is None


def test_two_drivers_starting_together_both_enter_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two searches of one run started together each read the manifest before the other
    wrote it back with its session: one session was lost."""
    import threading
    import time

    read = provenance.read

    def slow(run_dir: Path) -> dict | None:
        found = read(run_dir)
        time.sleep(0.3)  # between reading the manifest and writing it back
        return found

    monkeypatch.setattr(provenance, "read", slow)
    drivers = [
        threading.Thread(target=provenance.append, args=(tmp_path, {"started": i, "n": i}))
        for i in range(2)
    ]
    for driver in drivers:
        driver.start()
    for driver in drivers:
        driver.join(30)
    sessions = json.loads((tmp_path / provenance.MANIFEST_FILE).read_text())["sessions"]
    assert sorted(s["n"] for s in sessions) == [0, 1]


def test_a_job_scripts_secrets_stay_out_of_the_manifest_and_its_copies(tmp_path: Path) -> None:
    """A launcher profile's prologue may export a token: the worker job script went whole
    into manifest.json, and from there into every export's manifest, made to be shared."""
    script = "#!/bin/bash\nexport HF_TOKEN=hf_s3cret\nexport SUPERVISOR_JOB_CORES=8\n"
    launcher = {"file": "slurm.yaml", "kind": "slurm", "job_script": script}
    entry = provenance.session(
        command="supervisor search s.yaml",
        experiment={},
        benchmark_target="tests.toy_benchmark:ToyBenchmark",
        storage="journal:j.log",
        cluster="slurm",
        launcher=launcher,
    )
    text = provenance.append(tmp_path, entry).read_text()
    assert "hf_s3cret" not in text
    assert "export HF_TOKEN=***\\nexport SUPERVISOR_JOB_CORES=8" in text
    # A manifest written before: masked where it is read (Run.manifest, the exports).
    (tmp_path / provenance.MANIFEST_FILE).write_text(
        json.dumps({"sessions": [entry | {"launcher": launcher}]})
    )
    assert "hf_s3cret" not in json.dumps(provenance.read(tmp_path))
