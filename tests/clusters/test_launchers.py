"""Launcher profiles: validation, the job scripts each batch system gets, walltime/lifetime.

Job scripts are checked as text, like dask-jobqueue's own tests: no batch system needed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import dask
import optuna
import pytest
from distributed import Client, Scheduler, SpecCluster, Worker, WorkerPlugin

from supervisor.clusters.handle import configure_dask
from supervisor.clusters.jobqueue import job_script
from supervisor.clusters.launch import load_launcher
from supervisor.clusters.profile import (
    KINDS,
    PROJECT_LAUNCHERS,
    default_lifetime,
    load,
    walltime_seconds,
)
from supervisor.config import space
from supervisor.errors import SpaceError, UserError
from supervisor.study import attrs
from supervisor.study.driver import Driver

ROOT = Path(__file__).resolve().parents[2]
TOY = "tests.toy_benchmark:ToyBenchmark"


def profile(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def script(tmp_path: Path, text: str) -> str:
    return job_script(load(str(profile(tmp_path, text))), tmp_path / "runs" / "st", "st")


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def toy_space(tmp_path: Path) -> Path:
    path = tmp_path / "toy.yaml"
    path.write_text(
        f'study: st\nbenchmark: "{TOY}"\nparams:\n  x: {{type: float, low: -4, high: 4}}\n'
        "budget: {trials: 3}\n"
    )
    return path


# -- the shipped profiles ----------------------------------------------------------------


def test_every_shipped_profile_loads_and_comments_every_key() -> None:
    names = sorted(p.stem for p in PROJECT_LAUNCHERS.glob("*.yaml"))
    assert names == sorted(KINDS)
    for name in names:
        launcher = load(name)
        assert launcher.kind == name
        for line in (PROJECT_LAUNCHERS / f"{name}.yaml").read_text().splitlines():
            if re.match(r"[a-z_]+:", line) and not line.startswith("kind:"):
                assert "#" in line, f"{name}.yaml: key without a comment: {line}"
        if launcher.is_jobqueue:
            assert launcher.tls is True  # secure by default
            if launcher.walltime:
                assert launcher.lifetime is not None
                assert launcher.lifetime + launcher.lifetime_stagger < launcher.walltime


# -- job scripts, one per batch system ----------------------------------------------------

COMMON = """\
cores: 8
processes: 2
memory: 16GiB
gpus: 1
job_script_prologue: ["module load python/3.11", "source ~/venv/bin/activate"]
"""


def worker_command(text: str) -> str:
    return next(line for line in text.splitlines() if "distributed.cli.dask_worker" in line)


def test_slurm_job_script(tmp_path: Path) -> None:
    text = script(
        tmp_path,
        "kind: slurm\n" + COMMON + "queue: gpu\naccount: proj42\nwalltime: '02:00:00'\n"
        "job_extra_directives: ['--constraint=a100']\n",
    )
    for line in (
        "#SBATCH -J sv-st",
        "#SBATCH -p gpu",
        "#SBATCH -A proj42",
        "#SBATCH -n 1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=16G",
        "#SBATCH -t 02:00:00",
        "#SBATCH --constraint=a100",
        "#SBATCH --gres=gpu:1",
        f"#SBATCH -o {tmp_path}/runs/st/jobs/sv-st-%J.out",
        "module load python/3.11",
        "source ~/venv/bin/activate",
    ):
        assert line in text.splitlines(), line
    command = worker_command(text)
    assert command.startswith(f"{sys.executable} -m distributed.cli.dask_worker tls://")
    # 2 workers per job, each 1 Dask thread: one trial at a time, 4 cores each.
    assert "--nworkers 2" in command and "--nthreads 1 " in command
    assert "--memory-limit 8.00GiB" in command
    # 2 h walltime: lifetime 2 h - 5 min stagger - 5 min grace; the first job lives
    # lifetime + stagger, later ones less (spread over the cohort), each job its own.
    assert "--lifetime 6900s" in command and "--lifetime-stagger" not in command
    assert "export SUPERVISOR_JOB_CORES=8" in text.splitlines()  # a trial's node share
    assert "--dashboard-address 127.0.0.1:0" in command
    cert = f"{tmp_path}/runs/st/tls/cert.pem"
    assert f"--tls-ca-file {cert} --tls-cert {cert} --tls-key {tmp_path}/runs/st/tls/key.pem" in (
        command
    )
    assert not (tmp_path / "runs").exists()  # the script is shown, nothing is written


def test_gpu_jobs_pin_one_gpu_per_worker_or_pack_several(tmp_path: Path) -> None:
    text = script(
        tmp_path,
        "kind: slurm\ncores: 8\nmemory: 16GiB\nwalltime: '01:00:00'\ngpus: 2\n"
        "trials_per_gpu: 2\njob_script_prologue: [module load cuda]\n",
    )
    lines = text.splitlines()
    assert "#SBATCH --gres=gpu:2" in lines
    # The workers learn the packing from the environment the prologue sets.
    assert lines.index("module load cuda") < lines.index("export SUPERVISOR_GPUS=2")
    assert "export SUPERVISOR_TRIALS_PER_GPU=2" in lines
    command = worker_command(text)
    assert "--nworkers 4" in command  # 2 GPUs x 2 trials each, one trial per worker
    assert "--preload supervisor.clusters.gpu_pin" in command
    assert "--resources GPU=1" in command
    launcher = load(str(profile(tmp_path, "kind: pbs\ncores: 4\nmemory: 8GiB\ngpus: 4\n")))
    assert (launcher.processes, launcher.trials_per_gpu) == (4, 1)  # one trial per GPU
    packed = "kind: slurm\ncores: 8\nmemory: 8GiB\ngpus: 2\nprocesses: 6\n"
    assert load(str(profile(tmp_path, packed, "q.yaml"))).trials_per_gpu == 3
    for bad, message in (
        ("gpus: 2\nprocesses: 3\n", "3 worker processes on 2 GPU(s): expected a multiple of 2"),
        ("gpus: 2\ntrials_per_gpu: 2\nprocesses: 2\n", "expected 2 x trials_per_gpu (2)"),
        ("trials_per_gpu: 2\n", "trials_per_gpu: needs gpus > 0"),
    ):
        path = profile(tmp_path, "kind: slurm\ncores: 8\nmemory: 8GiB\n" + bad, "bad.yaml")
        with pytest.raises(SpaceError, match=re.escape(message)):
            load(str(path))


def test_gpu_pin_gives_each_worker_its_device() -> None:
    from supervisor.clusters import gpu_pin

    assert [gpu_pin.worker_index(n) for n in ("sv-st-0", "sv-st-3", "SLURMCluster", "x")] == [
        0, 3, 0, 0,
    ]  # fmt: skip
    # 2 GPUs, 2 trials each: workers 0, 1 on GPU 0 and workers 2, 3 on GPU 1.
    assert [gpu_pin.device_for(i, 2, 2, None) for i in range(4)] == ["0", "0", "1", "1"]
    # The batch system gave the job GPUs 4 and 6: the workers share those.
    assert [gpu_pin.device_for(i, 1, 2, "4,6") for i in range(2)] == ["4", "6"]
    env = {"SUPERVISOR_GPUS": "2", "SUPERVISOR_TRIALS_PER_GPU": "1", "CUDA_VISIBLE_DEVICES": "4,6"}
    assert gpu_pin.pin("job-1", env) == "6"
    assert env["CUDA_VISIBLE_DEVICES"] == env["HIP_VISIBLE_DEVICES"] == "6"
    assert gpu_pin.pin("job-1", {}) is None  # not a GPU job: nothing changes


def test_trials_that_need_a_gpu_go_to_gpu_workers_only(tmp_path: Path) -> None:
    from distributed import LocalCluster

    configure_dask()
    exp = space.load(toy_space(tmp_path))
    study = optuna.create_study(directions=exp.directions)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        for name, resources in (("gpu", {"GPU": 1}), ("cpu", {})):
            cluster.worker_spec[name] = {
                "cls": Worker, "options": {"nthreads": 1, "resources": resources},
            }  # fmt: skip
        cluster.sync(cluster._correct_state)
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=30)
            gpu = next(
                a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "gpu"
            )
            driver = Driver(exp, study, client, slots=2, resources={"GPU": 1.0})
            assert driver.run().finished == 3
    assert {t.user_attrs["worker"] for t in study.trials} == {gpu}


def test_pbs_job_script(tmp_path: Path) -> None:
    text = script(
        tmp_path, "kind: pbs\n" + COMMON + "queue: workq\naccount: proj42\nwalltime: '01:30:00'\n"
    )
    lines = text.splitlines()
    for line in (
        "#PBS -N sv-st",
        "#PBS -q workq",
        "#PBS -A proj42",
        "#PBS -l select=1:ncpus=8:mem=16GB",
        "#PBS -l walltime=01:30:00",
        "#PBS -l ngpus=1",
        "module load python/3.11",
    ):
        assert line in lines, line
    assert "--nworkers 2" in worker_command(text)


def test_lsf_job_script(tmp_path: Path) -> None:
    text = script(
        tmp_path,
        "kind: lsf\n" + COMMON + "queue: normal\nproject: proj42\nwalltime: '01:30'\n"
        "lsf_units: MB\n",
    )
    lines = text.splitlines()
    for line in (
        "#BSUB -J sv-st",
        "#BSUB -q normal",
        '#BSUB -P "proj42"',
        "#BSUB -n 8",
        '#BSUB -R "span[hosts=1]"',
        "#BSUB -W 01:30",
        '#BSUB -gpu "num=1"',
        "module load python/3.11",
    ):
        assert line in lines, line
    # LSF's 01:30 is 1 h 30 min, not 90 s.
    assert "--lifetime 5100s" in worker_command(text)  # 4830 s + 270 s of stagger


def test_sge_job_script(tmp_path: Path) -> None:
    text = script(
        tmp_path,
        "kind: sge\n" + COMMON + "queue: all.q\nproject: proj42\nwalltime: '01:00:00'\n"
        "resource_spec: h_vmem=16G\njob_extra_directives: ['-pe smp 8']\n",
    )
    lines = text.splitlines()
    for line in (
        "#$ -N sv-st",
        "#$ -q all.q",
        "#$ -P proj42",
        "#$ -l h_vmem=16G",
        "#$ -l h_rt=01:00:00",
        "#$ -pe smp 8",
        "#$ -l gpu=1",
        "module load python/3.11",
    ):
        assert line in lines, line


def test_htcondor_submit_file(tmp_path: Path) -> None:
    text = script(
        tmp_path,
        "kind: htcondor\n" + COMMON + "disk: 4GiB\nlifetime: 2h\n"
        "job_extra_directives: {'+MaxRuntime': 7200}\n",
    )
    lines = text.splitlines()
    for line in (
        "MY.DaskWorkerCores = 8",
        "MY.DaskWorkerMemory = 17179869184",
        "MY.DaskWorkerDisk = 4294967296",
        "+MaxRuntime = 7200",
        "request_gpus = 1",
        f"LogDirectory = {tmp_path}/runs/st/jobs",
    ):
        assert line in lines, line
    # HTCondor has no walltime: the lifetime is the profile's, + its stagger (5%, at most
    # 5 min) for the longest-lived job.
    assert "--lifetime 7500s" in text


def test_dask_config_fills_what_the_profile_leaves_out(tmp_path: Path) -> None:
    config = {
        "jobqueue.slurm.cores": 4,
        "jobqueue.slurm.memory": "8GiB",
        "jobqueue.slurm.walltime": "04:00:00",
        "jobqueue.slurm.job-extra-directives": ["--qos=low"],
        "jobqueue.slurm.job-script-prologue": ["module load cuda"],
        "jobqueue.slurm.log-directory": str(tmp_path / "logs"),
    }
    with dask.config.set(config):
        text = script(tmp_path, "kind: slurm\nqueue: gpu\ncores: 2\n")
    lines = text.splitlines()
    assert "#SBATCH --cpus-per-task=2" in lines  # the profile wins
    for line in (
        "#SBATCH --mem=8G",
        "#SBATCH -t 04:00:00",
        "#SBATCH --qos=low",
        "module load cuda",
    ):
        assert line in lines, line  # the rest comes from the dask config
    assert f"#SBATCH -o {tmp_path}/logs/sv-st-%J.out" in lines
    assert "--lifetime 14100s" in text  # derived from the configured 4 h walltime


def test_users_jobqueue_yaml_keeps_working(tmp_path: Path) -> None:
    """A ~/.config/dask/jobqueue.yaml (here through DASK_CONFIG) shapes the job script."""
    config_dir = tmp_path / "dask"
    config_dir.mkdir()
    (config_dir / "jobqueue.yaml").write_text(
        "jobqueue:\n  pbs:\n    cores: 36\n    memory: 100GB\n    queue: regular\n"
        "    account: PROJ123\n    walltime: '06:00:00'\n"
        "    job-script-prologue: ['module load conda']\n"
    )
    toy_space(tmp_path)
    profile(tmp_path, "kind: pbs\nprocesses: 6\n", "mine.yaml")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = cli(
        "search", "toy.yaml", "--launcher", "mine.yaml", "--dry-run", cwd=tmp_path,
        env={"DASK_CONFIG": str(config_dir)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for line in (
        "#PBS -q regular",
        "#PBS -A PROJ123",
        "#PBS -l select=1:ncpus=36:mem=94GB",  # 100 GB in PBS's GB (GiB),
        "#PBS -l walltime=06:00:00",
        "module load conda",
    ):
        assert line in result.stdout.splitlines(), line
    assert "1 job(s) (adaptive), each 36 core(s) for 6 worker(s) x 1 trial, 6 thread(s)" in (
        result.stdout
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


# -- the command line ---------------------------------------------------------------------


def test_search_dry_run_with_a_named_launcher_prints_the_job_script(tmp_path: Path) -> None:
    toy_space(tmp_path)
    result = cli("search", "toy.yaml", "--launcher", "slurm", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"launcher    {PROJECT_LAUNCHERS / 'slurm.yaml'} (slurm): 0 to 2 job(s)" in out
    assert "#SBATCH -J sv-st" in out and "#SBATCH -t 00:30:00" in out
    assert "tls://<scheduler-address>:<port>" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.yaml"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--launcher", "slurmm"], 'no such profile (did you mean "slurm"?)'),
        (["--launcher", "slurm", "--workers", "2"], "--workers/--threads size the local"),
        (["--launcher", "slurm", "--scheduler", "tcp://x:1"], "exclude each other"),
        (["--launcher", "bad.yaml"], "bad.yaml:2:1: wallclock: unknown key for a slurm profile"),
    ],
)
def test_launcher_mistakes_exit_2_with_one_line(
    tmp_path: Path, args: list[str], words: str
) -> None:
    toy_space(tmp_path)
    profile(tmp_path, "kind: slurm\nwallclock: '01:00:00'\n", "bad.yaml")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli("search", "toy.yaml", *args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


# -- validation -------------------------------------------------------------------------

BAD_PROFILES = {
    "kind typo": ("kind: slrum\n", ":1:1: kind: expected one of", 'did you mean "slurm"'),
    "unknown key": (
        "kind: pbs\ncores: 4\nmemory: 8GiB\nwaltime: '01:00:00'\n",
        ":4:1: waltime: unknown key for a pbs profile",
        'did you mean "walltime"',
    ),
    "key of another scheduler": (
        "kind: slurm\nproject: p\n",
        ":2:1: project: unknown key for a slurm profile",
        "expected one of cores, processes, memory,",
    ),
    "unquoted walltime": (
        "kind: slurm\ncores: 1\nmemory: 1GiB\nwalltime: 1:30:00\n",
        ":4:11: walltime: YAML 1.1 reads 1:30:00 as the number 5400 (base 60)",
        "quote it",
    ),
    "unreadable walltime": (
        "kind: slurm\ncores: 1\nmemory: 1GiB\nwalltime: 'one hour'\n",
        ":4:1: walltime: cannot read walltime 'one hour' for slurm",
        "",
    ),
    "lsf walltime with seconds": (  # bsub -W refuses it; it was read as 1 h
        "kind: lsf\ncores: 1\nmemory: 1GiB\nwalltime: '01:00:00'\n",
        ":4:1: walltime: cannot read walltime '01:00:00' for lsf: expected [HH:]MM, no seconds",
        "",
    ),
    "lifetime past walltime": (
        "kind: slurm\ncores: 1\nmemory: 1GiB\nwalltime: '01:00:00'\nlifetime: 58m\n",
        ":5:1: lifetime: lifetime (3480 s) + lifetime_stagger (174 s) must end before",
        "killed mid-trial",
    ),
    "stagger past walltime": (
        "kind: slurm\ncores: 1\nmemory: 1GiB\nwalltime: '01:00:00'\nlifetime_stagger: 1h\n",
        ":5:1: lifetime_stagger: 3600 s leaves the jobs no lifetime within the walltime",
        "(3600 s, less 300 s to start and retire)",
    ),
    "more processes than cores": (
        "kind: lsf\ncores: 2\nprocesses: 4\nmemory: 1GiB\n",
        ":3:1: processes: 4 processes need at least as many cores",
        "",
    ),
    "min above max": (
        "kind: sge\ncores: 2\nmemory: 1GiB\nmin_jobs: 3\nmax_jobs: 2\n",
        ":4:1: min_jobs: min_jobs (3) exceeds max_jobs (2)",
        "",
    ),
    "bad memory": ("kind: slurm\ncores: 2\nmemory: lots\n", ":3:1: memory: expected a size", ""),
    "prologue not a list": (
        "kind: slurm\ncores: 1\nmemory: 1GiB\njob_script_prologue: module load x\n",
        ":4:1: job_script_prologue: expected a list of strings",
        "",
    ),
    "missing cert file": (
        "kind: mpi\ntls: {ca_file: ca.pem, cert: c.pem, key: k.pem}\n",
        ":2:7: tls.ca_file: no such file: ca.pem",
        "",
    ),
    "twice": (
        "kind: slurm\njob-name: a\njob_name: b\n",
        ":3:1: job_name: given twice",
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PROFILES))
def test_bad_profiles_are_located_errors(tmp_path: Path, case: str) -> None:
    text, where, hint = BAD_PROFILES[case]
    path = profile(tmp_path, text)
    with pytest.raises(SpaceError) as info:
        load(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}{where}"), message
    assert hint in message and "\n" not in message


def test_missing_cores_names_both_places_to_set_it(tmp_path: Path) -> None:
    with dask.config.set({"jobqueue.slurm.cores": None}), pytest.raises(SpaceError) as info:
        load(str(profile(tmp_path, "kind: slurm\nmemory: 4GiB\n")))
    assert "missing 'cores': set it here (e.g. cores: 8) or in the dask config" in str(info.value)


def test_dashed_keys_as_in_jobqueue_yaml_are_accepted(tmp_path: Path) -> None:
    launcher = load(
        str(profile(tmp_path, "kind: slurm\ncores: 2\nmemory: 1GiB\njob-extra-directives: [-x]\n"))
    )
    assert launcher.keywords["job_extra_directives"] == ["-x"]


def test_calibration_sizes_jobs_unless_the_profile_does(tmp_path: Path) -> None:
    block = "calibration:\n  benchmark: weather\n  threads_per_trial: 2\n  trials_per_node: 3\n"
    packed = load(str(profile(tmp_path, "kind: slurm\nmemory: 8GiB\n" + block)))
    assert (packed.cores, packed.processes, packed.threads_per_trial) == (6, 3, 2)
    mine = load(str(profile(tmp_path, "kind: slurm\nmemory: 8GiB\ncores: 4\n" + block, "m.yaml")))
    assert (mine.cores, mine.processes) == (4, 3)
    local = load(str(profile(tmp_path, "kind: local\n" + block, "l.yaml")))
    assert local.extra == {"workers": 3, "threads": 2}


def test_a_gpu_node_s_calibration_packs_trials_per_gpu_as_measured(tmp_path: Path) -> None:
    """Measured on a node of 4 GPUs (8 trials spread over them), the packing was divided
    by the job's GPUs: a job of 1 GPU got all 8 trials on it."""
    block = "calibration:\n  benchmark: weather\n  threads_per_trial: 1\n  trials_per_node: 8\n"
    job = "kind: slurm\nmemory: 8GiB\ncores: 8\ngpus: {}\n"
    for gpus in (1, 4):
        spread = load(str(profile(tmp_path, job.format(gpus) + block + "  gpus: 4\n")))
        assert spread.trials_per_gpu == 2
    # One measured before it said its GPUs: spread over the job's, as it was.
    assert load(str(profile(tmp_path, job.format(4) + block))).trials_per_gpu == 2


def test_unknown_named_profile_lists_the_known_ones() -> None:
    with pytest.raises(UserError, match="named profiles: htcondor, local, lsf, mpi, pbs"):
        load_launcher("nope", workers=None, threads=None, scheduler=None)


@pytest.mark.parametrize(
    ("text", "kind", "seconds"),
    [
        ("30", "slurm", 1800),
        ("30:00", "slurm", 1800),
        ("01:30:00", "slurm", 5400),
        ("2-00", "slurm", 172800),
        ("1-12:30", "slurm", 131400),
        ("1-00:00:30", "slurm", 86430),
        ("01:30", "lsf", 5400),
        ("01:00:00", "lsf", None),  # no seconds in bsub -W
        ("90", "lsf", 5400),
        ("3600", "pbs", 3600),
        ("10:00", "sge", 600),
        ("12:00:00", "pbs", 43200),
    ],
)
def test_walltime_in_each_schedulers_syntax(text: str, kind: str, seconds: int | None) -> None:
    assert walltime_seconds(text, kind) == seconds


@pytest.mark.parametrize("walltime", [60, 600, 1800, 3600, 86400])
def test_default_lifetime_ends_before_the_walltime(walltime: float) -> None:
    lifetime, stagger = default_lifetime(walltime)
    assert 0.8 * walltime <= lifetime and lifetime + stagger < walltime
    assert walltime - (lifetime + stagger) <= 300  # at most 5 min are given up


def test_a_profile_s_own_stagger_comes_off_the_default_lifetime(tmp_path: Path) -> None:
    """With only lifetime_stagger set, the jobs lived the default lifetime plus it: of a
    1-hour walltime, 52 min + 10 min, and the batch system killed them mid-trial."""
    text = "kind: slurm\ncores: 1\nmemory: 1GiB\nwalltime: '01:00:00'\nlifetime_stagger: 10m\n"
    launcher = load(str(profile(tmp_path, text)))
    assert launcher.lifetime_stagger == 600
    assert launcher.lifetime is not None and launcher.lifetime + 600 == 3600 - 300


# -- workers retiring at their lifetime ----------------------------------------------------

STARTS: list[tuple[str, str]] = []  # (worker name, task key) each time a task starts executing


class RecordStarts(WorkerPlugin):
    def setup(self, worker: Any) -> None:
        self.name = str(worker.name)

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish == "executing":
            STARTS.append((self.name, str(key)))


def test_trials_on_retiring_workers_run_again_and_count_once(tmp_path: Path) -> None:
    """Two of three workers reach their lifetime (as before a walltime) mid-trial."""
    path = tmp_path / "toy.yaml"
    path.write_text(
        f'benchmark: {{name: "{TOY}", options: {{delay: 0.25}}}}\nobjectives: [loss]\n'
        "params:\n  x: {type: float, low: -4, high: 4}\nbudget: {trials: 12, epochs: 2}\n"
        "sampler: random\nseed: 5\n"
    )
    exp = space.load(path)
    study = optuna.create_study(study_name=exp.study_name, directions=exp.directions)
    configure_dask()

    def worker(lifetime: str | None) -> dict[str, Any]:
        options = {"nthreads": 1, "host": "127.0.0.1", "lifetime": lifetime}
        return {"cls": Worker, "options": options}

    workers = {"steady": worker(None), "short": worker("1s"), "longer": worker("2s")}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": None}}
    STARTS.clear()
    with SpecCluster(workers, scheduler) as cluster, Client(cluster) as client:
        client.register_plugin(RecordStarts())
        names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
        summary = Driver(exp, study, client, slots=3).run()
        # Asked of the scheduler itself: the client's copy of its identity may be stale.
        left = client.run_on_scheduler(
            lambda dask_scheduler: [ws.name for ws in dask_scheduler.workers.values()]
        )
    assert left == ["steady"]  # the others retired while trials were running

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert summary.finished == 12 and len(complete) == 12
    assert sum(1 for t in trials if attrs.counts_toward_budget(t)) == 12  # counted once
    finished_on = {t.number: names[t.user_attrs["worker"]] for t in complete}

    def number(key: str) -> int:
        return int(key.split("-")[1])

    cut = {key for w, key in STARTS if w != "steady" and finished_on.get(number(key)) != w}
    assert cut, "a retiring worker was running a trial"
    by_number = {t.number: t for t in trials}
    for key in cut:
        t = by_number[number(key)]
        if t.state.name == "COMPLETE":  # Dask moved the task to another worker
            assert sum(1 for _, k in STARTS if k == key) >= 2
        else:  # the driver saw the worker die and queued the same parameters again
            assert t.user_attrs[attrs.FAILURE] == "infrastructure"
            reruns = [r for r in complete if r.user_attrs.get(attrs.RETRY_OF) == t.number]
            assert len(reruns) == 1 and reruns[0].params == t.params
