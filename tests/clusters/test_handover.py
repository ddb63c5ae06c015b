"""Worker jobs a chain's link kept queued for the next link (supervisor/clusters/handover.py):
adopted only when still queued and of the same profile, cancelled when no next link comes.
Fake ``squeue`` (``-o "%i %T"``: the ids it lists, PENDING) and ``scancel`` (records its
arguments) on the PATH; tests/system/test_slurm_handover.py runs the handover on Slurm."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from supervisor.clusters import handover
from supervisor.clusters.renewal import Renewal
from supervisor.commands.stop import stop_campaign
from supervisor.commands.submit import MORE, STUCK, after_link

SQUEUE = '#!/bin/sh\nfor id in $QUEUED; do echo "$id PENDING"; done\n'
SCANCEL = '#!/bin/sh\necho "$@" >> "$(dirname "$0")/cancelled"\n'


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, text in (("squeue", SQUEUE), ("scancel", SCANCEL)):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


def kept(run_dir: Path, mark: str = "m1") -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    jobs = [{"job_id": "11", "name": "a-0", "lifetime": 500.0}, {"job_id": "12", "name": "a-1"}]
    (run_dir / handover.KEPT_FILE).write_text(json.dumps({"fingerprint": mark, "jobs": jobs}))


def cancelled(bin_dir: Path) -> list[str]:
    path = bin_dir / "cancelled"
    return path.read_text().split() if path.exists() else []


def test_the_next_link_adopts_the_kept_jobs_still_queued(
    tmp_path: Path, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept(tmp_path)
    monkeypatch.setenv("QUEUED", "11")  # 12 left the queue meanwhile
    renewal = Renewal(600.0)
    adopted, line = handover.adopt(tmp_path, "m1", renewal, 10)
    assert adopted == {"a-0": "11"}
    assert line == "Adopted 1 worker job(s) the last driver job kept: 11"
    assert renewal.jobs["a-0"].lifetime == 500.0  # its own, from its job script
    assert cancelled(bin_dir) == []
    assert not (tmp_path / handover.KEPT_FILE).exists()


def test_kept_jobs_of_another_profile_are_cancelled_not_adopted(
    tmp_path: Path, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user changed the profile (more memory) between links: the queued jobs would
    run workers of the old one."""
    kept(tmp_path, mark="old")
    monkeypatch.setenv("QUEUED", "11 12")
    assert handover.adopt(tmp_path, "new", Renewal(None), 10) == ({}, "")
    assert cancelled(bin_dir) == ["11", "12"]


@pytest.mark.parametrize(("done_now", "left", "decision"), [(3, 5, MORE), (0, 5, STUCK)])
def test_jobs_kept_for_a_next_link_that_does_not_come_are_cancelled(
    tmp_path: Path, bin_dir: Path, done_now: int, left: int, decision: int
) -> None:
    kept(tmp_path)
    assert after_link(tmp_path, 0, done_now, left) == decision
    assert cancelled(bin_dir) == ([] if decision == MORE else ["11", "12"])
    assert (tmp_path / handover.KEPT_FILE).exists() == (decision == MORE)


def test_supervisor_stop_between_links_cancels_the_kept_jobs(
    tmp_path: Path, bin_dir: Path
) -> None:
    kept(tmp_path)
    (tmp_path / "driver").mkdir()
    study = optuna.create_study(study_name="toy")
    stop_campaign(study, run_dir=tmp_path)
    assert cancelled(bin_dir) == ["11", "12"]


def test_a_search_typed_by_hand_after_a_chain_cancels_the_jobs_kept_for_its_next_link(
    tmp_path: Path, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user cancelled the chain's next driver job and ran the search by hand: the
    worker jobs the last link kept would start for nobody and wait for a scheduler that
    never comes."""
    from supervisor.clusters.jobqueue import make_jobqueue
    from supervisor.clusters.profile import load

    monkeypatch.delenv(handover.CHAIN_ENV, raising=False)
    kept(tmp_path / "run")
    (bin_dir / "sbatch").write_text("#!/bin/sh\nsleep 1000\n")  # no job is taken
    (bin_dir / "sbatch").chmod(0o755)
    profile = tmp_path / "s.yaml"
    profile.write_text("kind: slurm\ncores: 1\nmemory: 1GiB\nmin_jobs: 0\ntls: false\n")
    handle = make_jobqueue(load(str(profile)), tmp_path / "run", "toy", "127.0.0.1:0")
    handle.client.close()
    handle.cluster.close()
    assert cancelled(bin_dir) == ["11", "12"]
    assert not (tmp_path / "run" / handover.KEPT_FILE).exists()


# squeue -h -j ID -t STATES -o %T: the state of job ID when it is in $QUEUED; as Slurm,
# nothing for a job that has ended, or "Invalid job id" for one it forgot ($FORGOTTEN).
LOOKUP = """#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = -j ] && id=$2; shift; done
echo "$id" >> "$(dirname "$0")/looked-up"
[ -n "$SLURM_DOWN" ] && { echo "slurm_load_jobs error: Unable to contact controller"; exit 1; }
for q in $FORGOTTEN; do
  [ "$q" = "$id" ] && { echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1; }
done
for q in $QUEUED; do [ "$q" = "$id" ] && echo PENDING; done
exit 0
"""


def waiting_job(run_dir: Path, bin_dir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """A kept worker job's script, started: it waits for the next link's driver."""
    (bin_dir / "squeue").write_text(LOOKUP)
    driver = run_dir / "driver"
    driver.mkdir(parents=True)
    chain = [{"job_id": "76", "link": 1}, {"job_id": "77", "link": 2}]
    (driver / "chain.json").write_text(json.dumps(chain, indent=2) + "\n")
    script = "\n".join([*handover.prologue(run_dir), f'echo "joined ${handover.ADDRESS_ENV}"'])
    return subprocess.Popen(
        ["bash", "-c", script], env={**os.environ, **env}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.parametrize("env", [{"QUEUED": ""}, {"QUEUED": "76", "FORGOTTEN": "77"}])
def test_a_kept_job_ends_at_once_when_the_next_driver_job_was_cancelled(
    tmp_path: Path, bin_dir: Path, env: dict[str, str]
) -> None:
    """The user cancelled the next link's driver job (scancel) while it was queued: a
    kept worker job that started then waited its 10 minutes on a node for nobody."""
    begun = time.monotonic()
    with waiting_job(tmp_path, bin_dir, env) as job:
        try:
            out, err = job.communicate(timeout=30)
        finally:
            job.kill()
    assert job.returncode == 0 and out == ""
    assert "the campaign's driver job 77 has left the queue (cancelled?): ending" in err
    assert time.monotonic() - begun < 4  # not WAIT_S
    assert (bin_dir / "looked-up").read_text().split() == ["77"]  # the latest link's


@pytest.mark.parametrize("env", [{"QUEUED": "77"}, {"SLURM_DOWN": "1"}])
def test_a_kept_job_waits_for_a_driver_job_still_queued_or_when_slurm_does_not_answer(
    tmp_path: Path, bin_dir: Path, env: dict[str, str]
) -> None:
    with waiting_job(tmp_path, bin_dir, env) as job:
        try:
            time.sleep(1)
            assert job.poll() is None  # still waiting
            (tmp_path / handover.ADDRESS_FILE).write_text("tls://10.0.0.1:8786\n")
            out, _ = job.communicate(timeout=30)
        finally:
            job.kill()
    assert out == "joined tls://10.0.0.1:8786\n"
