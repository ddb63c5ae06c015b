"""``supervisor submit`` refuses now what its batch job would fail on later: the search
flags after ``--`` get the checks of ``supervisor search``, a refusal prints its one line
and nothing else, and no value can add a line to a job script or a command to its shell."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.commands.test_submit import cli, space

SUBMIT = ["submit", "toy.yaml", "--launcher", "slurm", "--dry-run"]
INJECTED = "debug\n#SBATCH --uid=0"


def refused(folder: Path, *args: str) -> str:
    """The one line of a refusal; nothing on stdout, nothing written."""
    done = cli(folder, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES), "wrote something"
    return lines[0]


FILES = ("toy.yaml", "p.yaml")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    space(tmp_path)
    (tmp_path / "p.yaml").write_text("kind: slurm\ncores: 2\nmemory: 4GiB\nwalltime: '01:00:00'\n")
    return tmp_path


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--", "--trials", "3", "--trials", "4"], "--trials: given twice"),
        (["--", "--trials=3", "--trials", "4"], "--trials: given twice"),
        (["--study", "a", "--", "--study", "b"], "--study: given twice"),
        (["--", "--launcher", "pbs"], "--launcher after `--`"),
        (["--", "--plain"], "--plain after `--`"),
        (["--", "--dry-run"], "--dry-run after `--`"),
        (["--", "--runs-dir", "elsewhere"], "--runs-dir after `--`"),
        (["--", "--trials", "0"], "'--trials'"),
        (["--", "--bogus"], "No such option: --bogus"),
    ],
)
def test_search_flags_after_the_dashes_get_the_checks_of_search(
    work: Path, flags: list[str], message: str
) -> None:
    assert message in refused(work, *SUBMIT, *flags)


@pytest.mark.parametrize(
    "flags",
    [
        ["--grace", "10"],
        ["--walltime", "soon"],
        ["--max-jobs", "0"],
        ["--", "--storage", "postgresql://u:SECRET@h/db"],
    ],
)
def test_a_refusal_prints_only_its_line(work: Path, flags: list[str]) -> None:
    refused(work, *SUBMIT, *flags)


def test_a_refused_sbatch_prints_only_its_line(work: Path) -> None:
    bin_dir = work.parent / f"{work.name}-bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    # The worker jobs are taken (the test comes first), the driver's refused.
    sbatch.write_text(
        '#!/bin/sh\ngrep -q dask_worker && exit 0\necho "no such partition" >&2\nexit 1\n'
    )
    sbatch.chmod(0o755)
    done = cli(
        work,
        *SUBMIT[:-1],
        path=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == ["error: sbatch refuses the driver job: no such partition"]
    # tried with sbatch --test-only first: the run directory is not written
    assert not (work / "runs").exists()


# sbatch as a site's would answer a worker job on a partition that does not exist; the
# driver's own job script (no dask worker in it) is taken.
SBATCH_WORKERS_REFUSED = """#!/bin/sh
if grep -q distributed.cli.dask_worker; then
  echo "sbatch: error: invalid partition specified: nosuch" >&2
  exit 1
fi
echo 4242
"""


def test_worker_jobs_sbatch_refuses_are_refused_before_the_driver_is_submitted(
    work: Path,
) -> None:
    """A profile whose worker jobs sbatch refuses was submitted as a driver job all the
    same: the user learnt it from the driver's log once its job had waited in the queue
    and run, and the run directory and chain were written."""
    bin_dir = work.parent / f"{work.name}-bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", SBATCH_WORKERS_REFUSED), ("squeue", "#!/bin/sh\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    submit = ["submit", "toy.yaml", "--launcher", "p.yaml"]
    done = cli(work, *submit, path=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert done.returncode == 2 and done.stdout == "", (done.stdout, done.stderr)
    assert done.stderr.splitlines() == [
        "error: p.yaml: sbatch refuses its worker jobs:"
        " sbatch: error: invalid partition specified: nosuch"
    ]
    assert not (work / "runs").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--partition", INJECTED], "--partition 'debug\\n#SBATCH --uid=0': "),
        (["--partition", "gpu;touch x"], "--partition 'gpu;touch x': "),
        (["--partition", "gpu debug"], "--partition 'gpu debug': "),
        (["--account", "a b;touch x"], "--account 'a b;touch x': "),
        (["--account", "proj\r"], "--account 'proj\\r': "),
        (["--walltime", "04:00:00\n"], "--walltime '04:00:00\\n'"),
        (["--prologue", "module load x\n#SBATCH --uid=0"], "--prologue 'module load x\\n#S"),
        (["--prologue", "#SBATCH --uid=0"], "--prologue '#SBATCH --uid=0': "),
        (["--", "--storage", "sqlite:///x.db\n#SBATCH --uid=0"], "sqlite:///x.db\\n#SBATCH"),
        (["--runs-dir", "my runs"], "--runs-dir 'my runs': "),
    ],
)
def test_no_value_adds_a_line_or_a_command_to_the_driver_script(
    work: Path, flags: list[str], message: str
) -> None:
    assert message in refused(work, *SUBMIT, *flags)


def driver_script(stdout: str) -> str:
    return stdout[stdout.index("#!/usr/bin/env bash\n#SBATCH --job-name=sv-") :]


def test_names_the_scheduler_allows_and_quoted_shell_words(work: Path) -> None:
    (work / "my toy.yaml").write_text((work / "toy.yaml").read_text())
    done = cli(
        work,
        "submit", "my toy.yaml", "--launcher", "p.yaml", "--partition", "gpu,debug",
        "--account", "proj-1.x", "--prologue", "module load python", "--dry-run",
        "--", "--trials", "4", "--storage", "sqlite:///a b.db",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    script = driver_script(done.stdout)
    assert "#SBATCH --partition=gpu,debug\n#SBATCH --account=proj-1.x\n" in script
    assert (
        "search 'my toy.yaml' --launcher p.yaml --trials 4 --storage 'sqlite:///a b.db'" in script
    )
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_the_chain_follows_the_study_and_runs_dir_of_its_search(work: Path) -> None:
    """A --study after `--` names the run the chain follows; --runs-dir and the prologue
    reach the search and the next link."""
    done = cli(
        work,
        "submit", "toy.yaml", "--launcher", "p.yaml", "--runs-dir", "elsewhere",
        "--prologue", "module load python", "--dry-run", "--", "--study", "b",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    script = driver_script(done.stdout)
    assert "#SBATCH --job-name=sv-b-driver\n" in script
    assert "run=elsewhere/b\n" in script
    assert "search toy.yaml --launcher p.yaml --runs-dir elsewhere --study b --plain &" in script
    resubmit = next(line for line in script.splitlines() if " exec " in line)
    assert "--runs-dir elsewhere --prologue 'module load python' -- --study b ;;" in resubmit
    assert not (work / "elsewhere").exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('queue: "gpu\\n#SBATCH --uid=0"', "p.yaml:4:1: queue: "),
        ('account: "a b;touch x"', "p.yaml: account: "),
        ('job_name: "x y"', "p.yaml: job_name: "),
        ('walltime: "01:00:00\\n"', "p.yaml: walltime: "),
        (
            'job_extra_directives: ["--qos=x\\n#SBATCH --uid=0"]',
            "p.yaml:4:1: job_extra_directives: ",
        ),
        ('job_script_prologue: ["echo hi\\nrm -rf x"]', "p.yaml:4:1: job_script_prologue: "),
        ('log_directory: "/tmp/a b"', "p.yaml: log_directory: "),
        ('python: "python\\u0000"', "p.yaml:4:1: python: "),
    ],
)
def test_no_profile_value_adds_a_line_to_the_worker_script(
    work: Path, line: str, message: str
) -> None:
    profile = "kind: slurm\ncores: 2\nmemory: 4GiB\n" + line + "\n"
    if not line.startswith("walltime"):
        profile += "walltime: '01:00:00'\n"
    (work / "p.yaml").write_text(profile)
    assert message in refused(work, *SUBMIT[:3], "p.yaml", "--dry-run")
    assert message in refused(work, "search", "toy.yaml", "--launcher", "p.yaml", "--dry-run")


def test_profile_values_on_the_worker_command_line_are_quoted(work: Path) -> None:
    (work / "p.yaml").write_text(
        "kind: slurm\ncores: 2\nmemory: 4GiB\nwalltime: '01:00:00'\n"
        "python: 'python; touch y'\nlocal_directory: $TMPDIR\n"
        "worker_extra_args: ['--resources', 'A=1 B=2']\n"
    )
    done = cli(work, "search", "toy.yaml", "--launcher", "p.yaml", "--dry-run")
    assert done.returncode == 0, done.stderr
    command = next(ln for ln in done.stdout.splitlines() if "distributed.cli.dask_worker" in ln)
    assert command.startswith("'python; touch y' -m distributed.cli.dask_worker")
    assert "--local-directory $TMPDIR" in command  # a variable of the job's, as documented
    assert "--resources 'A=1 B=2'" in command
    assert not (work / "runs").exists()
