"""``supervisor submit``: the driver's job script as text, the chain record, bad flags."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.commands.submit import DONE, MORE, STUCK, next_link
from supervisor.study import attrs
from supervisor.study.storage import load_study

ROOT = Path(__file__).resolve().parents[2]
TOY = "tests.toy_benchmark:ToyBenchmark"


def space(folder: Path) -> Path:
    path = folder / "toy.yaml"
    path.write_text(
        f'study: toy\nbenchmark: {{name: "{TOY}"}}\nobjectives: [loss]\n'
        "params:\n  x: {type: float, low: -4, high: 4}\nbudget: {trials: 6, epochs: 1}\n"
    )
    return path


def cli(
    folder: Path, *args: str, path: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env or {})}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "supervisor.cli", *args],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=120,
    )


def test_the_dry_run_prints_a_job_that_forwards_the_warning_and_renews_itself(
    tmp_path: Path,
) -> None:
    space(tmp_path)
    done = cli(
        tmp_path,
        "submit", "toy.yaml", "--launcher", "slurm", "--walltime", "00:10:00",
        "--grace", "90", "--account", "proj1", "--prologue", "module load python",
        "--dry-run", "--", "--trials", "4",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    script = done.stdout[done.stdout.index("#!/usr/bin/env bash\n#SBATCH --job-name=sv-toy") :]
    for line in (
        "#SBATCH --time=00:10:00",
        "#SBATCH --signal=B:USR1@90",
        "#SBATCH --account=proj1",
        "module load python",
        "trap 'warned=1; ends=$(($(date +%s) + 90)); kill -USR1 $driver 2>/dev/null' USR1",
        "trap 'terminated=1; termed=$(date +%s); kill -TERM $driver 2>/dev/null' TERM",
    ):
        assert line in script
    assert "search toy.yaml --launcher slurm --trials 4 --plain &" in script
    assert "submit toy.yaml --launcher slurm --walltime 00:10:00 --grace 90" in script
    assert f"  {MORE}) SUPERVISOR_DRIVER_CHAIN=1 SUPERVISOR_LINK_ENDS=$ends exec" in script
    assert not (tmp_path / "runs").exists()
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--walltime", "soon"], "--walltime 'soon'"),
        (["--walltime", "00:01:00", "--grace", "120"], "--grace 120"),
        (["--grace", "5"], "--grace 5"),
        (["--max-jobs", "0"], "--max-jobs 0"),
        (["--", "--trials", "-3"], "trials"),
        (["--", "--no-such-flag"], "no-such-flag"),
        (["--", "--storage", "postgresql://u:SECRET@h/db"], "postgresql://u:***@h/db: the job"),
        (["--", "--storage=postgresql://u@h/db?password=SECRET"], "password in clear"),
    ],
)
def test_bad_flags_are_one_line_and_submit_nothing(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    space(tmp_path)
    done = cli(tmp_path, "submit", "toy.yaml", "--launcher", "slurm", "--dry-run", *flags)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr and "Traceback" not in done.stderr
    assert "SECRET" not in done.stdout + done.stderr
    assert not (tmp_path / "runs").exists()


def test_a_submission_is_recorded_in_the_chain_until_max_jobs(tmp_path: Path) -> None:
    space(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls"\necho 4242\n')
    sbatch.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    for _ in range(2):
        done = cli(
            tmp_path, "submit", "toy.yaml", "--launcher", "slurm", "--max-jobs", "2", path=path
        )
        assert done.returncode == 0, done.stderr
        assert "job 4242" in done.stdout
    refused = cli(
        tmp_path, "submit", "toy.yaml", "--launcher", "slurm", "--max-jobs", "2", path=path
    )
    assert refused.returncode == 2 and "--max-jobs 2" in refused.stderr
    driver = tmp_path / "runs" / "toy" / "driver"
    assert (bin_dir / "calls").read_text().count("--parsable") == 2
    assert stat.S_IMODE((driver / "driver.sbatch").stat().st_mode) == 0o700
    assert '"link": 2' in (driver / "chain.json").read_text()


def test_without_sbatch_submit_says_so(tmp_path: Path) -> None:
    space(tmp_path)
    done = cli(tmp_path, "submit", "toy.yaml", "--launcher", "slurm", path="/nonexistent")
    assert done.returncode == 2 and "sbatch" in done.stderr


@pytest.mark.parametrize(
    ("before", "now", "left", "decision"),
    [(0, 6, 0, DONE), (2, 4, 2, MORE), (4, 4, 2, STUCK), (0, 0, None, STUCK)],
)
def test_the_chain_goes_on_only_while_it_makes_progress(
    before: int, now: int, left: int | None, decision: int
) -> None:
    assert next_link(before, now, left) == decision


def test_the_chain_check_counts_a_run_that_does_not_exist_yet_as_zero(tmp_path: Path) -> None:
    done = cli(tmp_path, "chain", "runs/toy", "--count", "--since", "0")
    assert done.stdout.strip() == "0" and done.returncode == STUCK


def test_a_submitted_run_is_its_owner_s_only_while_its_job_waits(tmp_path: Path) -> None:
    """``submit`` made the run directory with the umask's mode (0777 under umask 000), and
    it stayed so until the job started a search (hours in the queue); a run directory that
    is a symbolic link was followed. It is made as a search makes it, or refused."""
    space(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text("#!/bin/sh\necho 4242\n")
    sbatch.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    previous = os.umask(0o000)
    try:
        done = cli(tmp_path, "submit", "toy.yaml", "--launcher", "slurm", path=path)
    finally:
        os.umask(previous)
    assert done.returncode == 0, done.stderr
    runs = tmp_path / "runs"
    assert stat.S_IMODE(runs.stat().st_mode) == 0o755
    assert stat.S_IMODE((runs / "toy").stat().st_mode) == 0o700

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (runs / "linked").symlink_to(elsewhere)
    refused = cli(
        tmp_path, "submit", "toy.yaml", "--study", "linked", "--launcher", "slurm", path=path
    )
    assert refused.returncode == 2, refused.stderr
    assert "symbolic link" in refused.stderr and not list(elsewhere.iterdir())


# Slurm's controller restarting: each first try times out (--test-only, then the
# submission); with TAKEN set, the timed-out submission was taken all the same. The test
# of the worker jobs' script (before the driver's) is taken, and not counted.
SBATCH_AWAY = """#!/bin/sh
case "$*" in *--test-only*) grep -q dask_worker && exit 0 ;; esac
echo "$@" >> "$(dirname "$0")/calls"
n=$(wc -l < "$(dirname "$0")/calls")
if [ $((n % 2)) -eq 1 ]; then
  echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation" >&2
  exit 1
fi
echo 4242
"""


@pytest.mark.parametrize("taken", ["", "77"])
def test_a_slurm_controller_away_for_a_moment_does_not_end_the_chain(
    tmp_path: Path, taken: str
) -> None:
    """A chain's next link is submitted as its job ends: one 'Socket timed out' from a
    restarting controller was 'sbatch refuses the driver job' (exit 2), and the campaign
    of days stopped there. A submission that timed out but was taken is not doubled."""
    space(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(SBATCH_AWAY)
    # The queue shows the job once a submission was tried (none before: no driver yet).
    job = f"{taken} $PWD/runs/toy/driver/driver.sbatch" if taken else ""
    taken_once_tried = f'grep -q parsable "$(dirname "$0")/calls" && echo "{job}"'
    (bin_dir / "squeue").write_text(f"#!/bin/sh\n{taken_once_tried}\n")
    for name in ("sbatch", "squeue"):
        (bin_dir / name).chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    done = cli(tmp_path, "submit", "toy.yaml", "--launcher", "slurm", path=path)
    assert done.returncode == 0, done.stderr
    assert f"job {taken or 4242}" in done.stdout
    assert done.stderr.splitlines()[0] == (
        "sbatch: sbatch: error: Batch job submission failed: Socket timed out on send/recv"
        " operation (a temporary error of Slurm): trying again in 1 s"
    )
    submitted = (bin_dir / "calls").read_text().count("--parsable")
    assert submitted == (1 if taken else 2)
    chain = (tmp_path / "runs" / "toy" / "driver" / "chain.json").read_text()
    assert f'"job_id": "{taken or 4242}"' in chain


def test_a_link_that_stops_the_chain_says_why_last(tmp_path: Path) -> None:
    """A driver job that finished no trial ends the chain; its log said only, from the
    summary, that the chain's next job continues the search, and none came."""
    space(tmp_path)
    done = cli(tmp_path, "submit", "toy.yaml", "--launcher", "slurm", "--dry-run")
    assert done.returncode == 0, done.stderr
    script = done.stdout[done.stdout.index("#!/usr/bin/env bash\n#SBATCH --job-name=sv-") :]
    bare = tmp_path / "bin"  # no sbatch: the search stops at once
    bare.mkdir()
    ran = subprocess.run(
        ["/bin/bash", "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(bare)},
        timeout=120,
    )
    assert "slurm.yaml: sbatch not found on the PATH" in ran.stderr, ran.stderr
    assert ran.stdout.strip().splitlines()[-1] == (
        "The chain stops here: this driver job finished no trial (its worker jobs waited in"
        " the queue, or the search stopped on an error above); `supervisor submit` with the"
        " same arguments continues it."
    )
    assert ran.returncode == 2


@pytest.mark.parametrize(
    ("queue", "said"),
    [
        ("PENDING", "The last driver job, 4243, is pending"),
        ("", "The chain has stopped: its last driver job, 4243, has ended with trials left"),
    ],
)
def test_status_says_whether_the_chain_waits_runs_or_has_stopped(
    tmp_path: Path, queue: str, said: str
) -> None:
    """`status` listed the chain's jobs only: a chain between links (its next job waiting
    in the queue) and one that had stopped for good days ago looked the same."""
    space(tmp_path)
    assert cli(tmp_path, "search", "toy.yaml", "--trials", "2", "--plain").returncode == 0
    study = load_study(f"journal:{tmp_path}/runs/toy/journal.log", "toy")
    config = study.user_attrs[attrs.CONFIG]
    study.set_user_attr(attrs.CONFIG, {**config, "budget": {**config["budget"], "trials": 6}})
    driver = tmp_path / "runs" / "toy" / "driver"
    driver.mkdir()
    (driver / "chain.json").write_text('[{"job_id": "4242"}, {"job_id": "4243"}]')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text(f'#!/bin/sh\n[ "$3" = 4243 ] && echo "{queue}"\nexit 0\n')
    (bin_dir / "squeue").chmod(0o755)
    done = cli(tmp_path, "status", "toy", path=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert done.returncode == 0, done.stderr
    assert "Driver jobs: 2 (4242, 4243)" in done.stdout
    assert said in done.stdout, done.stdout
