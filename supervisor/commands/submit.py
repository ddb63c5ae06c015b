"""``supervisor submit``: the driver itself as a small batch job that renews itself.

Login nodes kill long processes; a campaign of days outlives any walltime. ``submit``
writes a job script that runs ``supervisor search`` (its workers in batch jobs of their
own, through the launcher profile), submits it with ``sbatch``, and records the job in
the run's driver chain (``runs/<study>/driver/chain.json``). Slurm warns the job before
its walltime (``--signal=B:USR1@GRACE``); the script passes the warning (and a SIGTERM,
as on ``scancel`` or a requeue) to the driver, which stops submitting, lets running
trials end or records them as interrupted and queues them again, and exits. After the
warning, the script then submits the next link of the chain while the budget is not done,
this job made progress, and the chain is shorter than ``--max-jobs``: a rerun never
repeats finished work, so each link resumes where the last one stopped. After a SIGTERM
alone it does not (``scancel`` ends the chain; a requeued job runs its link again).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import supervisor.atomic as atomic
import supervisor.rundir as rundir
from supervisor.commands import driver_jobs, job_secrets
from supervisor.commands.summary import CHAIN_ENV
from supervisor.errors import UserError

if TYPE_CHECKING:
    from supervisor.clusters.profile import Launcher

DRIVER_DIR, CHAIN_FILE = rundir.DRIVER_DIR, rundir.CHAIN_FILE
SCRIPT_FILE = "driver.sbatch"
# Exit codes of `supervisor chain RUN --since N` after a link: the budget is done; more
# to do and this link made progress (submit the next); more to do but no progress (stop:
# a chain must not burn the allocation on a campaign that cannot advance).
DONE, MORE, STUCK = 0, 3, 4
# What a link that stops the chain says last in its log (its summary said a next job
# would continue: the user found the campaign stopped with no word of why).
STUCK_LINE = (
    "The chain stops here: this driver job finished no trial (its worker jobs waited in"
    " the queue, or the search stopped on an error above); `supervisor submit` with the"
    " same arguments continues it."
)
# What a link stopped by a SIGTERM before its walltime says last.
TERMINATED_LINE = (
    "The chain stops here: this driver job was cancelled or requeued (SIGTERM before its"
    " walltime); a requeued job runs this link again, else `supervisor submit` with the"
    " same arguments continues the chain."
)
# `search` flags the driver's command line sets itself: not after `--`.
OWN_FLAGS = {
    "launcher": "give it to submit, before `--`",
    "runs_dir": "give it to submit, before `--`",
    "plain": "the driver job sets it (its log is a file)",
    "dry_run": "the driver job runs the search; `submit --dry-run` shows its script",
}
# The names Slurm takes in a #SBATCH line: a partition (or several) and an account.
PARTITIONS = re.compile(r"[\w.-]+(?:,[\w.-]+)*", re.ASCII)
ACCOUNT = re.compile(r"[\w.-]+", re.ASCII)


@dataclass
class SubmitOptions:
    space_file: str
    launcher: str  # the workers' launcher profile (slurm)
    search_args: list[str]  # `supervisor search` flags after the space file, as given
    study: str
    runs_root: Path = Path("runs")
    walltime: str = "04:00:00"  # of each driver job
    grace: int = 300  # seconds between the warning and the walltime
    max_jobs: int = 50  # links of the chain at most
    partition: str | None = None
    account: str | None = None
    prologue: list[str] = field(default_factory=list)  # e.g. module load, venv activation
    dry_run: bool = False


def check(opts: SubmitOptions) -> float:
    """Everything that can be wrong with the flags, before a file is written; the
    walltime in seconds."""
    from supervisor.clusters.profile import walltime_seconds
    from supervisor.clusters.script_values import WALLTIME

    seconds = walltime_seconds(opts.walltime, "slurm")
    if not WALLTIME.fullmatch(opts.walltime) or seconds is None or seconds <= 0:
        raise UserError(
            f"--walltime {opts.walltime!r}: expected Slurm's [D-]HH:MM:SS, e.g. 04:00:00"
        )
    if opts.grace < 30 or opts.grace >= seconds:
        raise UserError(
            f"--grace {opts.grace}: expected at least 30 s and less than the walltime"
            f" ({seconds:.0f} s): the driver needs time to stop cleanly"
        )
    if not 1 <= opts.max_jobs <= 10_000:
        raise UserError(f"--max-jobs {opts.max_jobs}: expected 1 to 10000")
    _check_script_values(opts)
    _check_no_password(opts.search_args)
    if not opts.dry_run and shutil.which("sbatch") is None:
        raise UserError("supervisor submit needs Slurm's sbatch on the PATH (none found)")
    return seconds


def _check_script_values(opts: SubmitOptions) -> None:
    """Each value stays what it is in the job script: a newline would add a #SBATCH line
    or a command of its own, a space or a ``;`` in a name would split its directive."""
    from supervisor.clusters.script_values import NOT_IN_A_PATH, control_character
    from supervisor.study.storage import redact

    names = (("--partition", opts.partition, PARTITIONS), ("--account", opts.account, ACCOUNT))
    for flag, value, allowed in names:
        if value is not None and not value.strip():  # an unset variable: Slurm's default
            raise UserError(f"{flag} {value!r}: expected a Slurm name (leave {flag} out)")
        if value and not allowed.fullmatch(value):
            several = "; several separated by commas" if flag == "--partition" else ""
            raise UserError(
                f"{flag} {value!r}: expected a Slurm name of letters, digits, _ . -{several}"
                " (it goes into a #SBATCH line)"
            )
    for line in opts.prologue:
        if control_character(line) or line.lstrip().startswith("#"):
            raise UserError(
                f"--prologue {line!r}: expected one shell command line (no newline or other"
                " control character, not a '#' line, which Slurm may read as a directive)"
            )
    for flag, value in (("", opts.space_file), ("--launcher ", opts.launcher)):
        if char := control_character(value):
            raise UserError(f"{flag}{value!r}: holds a control character ({char})")
    for arg in opts.search_args:
        if char := control_character(arg):
            raise UserError(
                f"{redact(arg)!r} after `--`: holds a control character ({char}); each flag"
                " must stay on the driver's command line"
            )
    log = str(opts.runs_root.resolve())
    if control_character(log) or NOT_IN_A_PATH.search(log):
        raise UserError(
            f"--runs-dir {str(opts.runs_root)!r}: the driver's log goes under {log!r}, which a"
            " #SBATCH line cannot hold (whitespace, quotes, '#', '\\' or a control character);"
            " use a folder without them"
        )


def _check_search_flags(opts: SubmitOptions, group: Any) -> io.StringIO:
    """The flags the driver job will run ``search`` with get the checks of ``supervisor
    search`` here, not in a batch job hours later: given twice (before and after ``--``
    too), unknown, bad values. Returns what its dry run printed, shown on success only."""
    from supervisor.commands.argv import given_options, refuse_repeated

    for name, param, _ in given_options(group.commands["search"], opts.search_args):
        if param.name in OWN_FLAGS:
            raise UserError(f"{name} after `--`: {OWN_FLAGS[param.name]}")
    argv = [*search_argv(opts), "--dry-run"]
    refuse_repeated(group, argv)
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        group.main(argv, prog_name="supervisor", standalone_mode=False)
    return shown


def run(opts: SubmitOptions, group: Any) -> str:
    """``supervisor submit``: every check, then the submission; what it prints. ``group``
    is the ``supervisor`` click group, whose ``search`` checks the search flags. A
    refusal prints nothing but its one line."""
    from supervisor.commands.search import SearchOptions, resolve_experiment

    check(opts)
    launcher = _check_launcher(opts.launcher)
    shown = _check_search_flags(opts, group)
    # The run the driver searches: --study may come after `--` (as in the next link).
    ctx = group.commands["search"].make_context(
        "search", search_argv(opts)[1:], resilient_parsing=True
    )
    exp = resolve_experiment(SearchOptions(space_file=opts.space_file, study=ctx.params["study"]))
    opts = dataclasses.replace(opts, study=exp.study_name)
    if not opts.dry_run:
        # Worker jobs sbatch would refuse (a partition that does not exist) are refused
        # now: the driver job found out only when it ran, after its wait in the queue.
        from supervisor.commands.preflight import batch_jobs

        batch_jobs(launcher, opts.runs_root / opts.study, opts.study)
    job_id, script = submit(opts)
    if job_id is None:
        return shown.getvalue() + script
    line = f"Submitted the driver as job {job_id}; `supervisor status {opts.study}`"
    return f"{shown.getvalue()}{line}\n"


def _check_launcher(ref: str) -> Launcher:
    """The driver job reserves one core: workers need batch jobs of their own."""
    from supervisor.clusters.profile import load

    launcher = load(ref)
    if not launcher.is_jobqueue:
        raise UserError(
            f"--launcher {ref}: a {launcher.kind} profile would run the workers inside the"
            " driver's job, which reserves one core; give a batch profile (slurm, pbs, ...),"
            " whose workers run in jobs of their own"
        )
    return launcher


def _check_no_password(search_args: list[str]) -> None:
    """The job script holds the search flags in clear: a URL with a password is refused."""
    from supervisor.rundir import without_password
    from supervisor.study.storage import redact

    for arg in search_args:
        value = arg.partition("=")[2] if arg.startswith("--") else arg
        if without_password(value) != value:
            raise UserError(
                f"{redact(value)}: the job script would hold this password in clear; pass"
                " the URL without it and put the password in ~/.pgpass (mode 0600), which"
                " the driver job reads on its node"
            )


def driver_script(opts: SubmitOptions, run_dir: Path, cwd: Path) -> str:
    """The job script of one link of the chain."""
    python = shlex.quote(sys.executable)
    search = shlex.join(search_argv(opts))
    resubmit = shlex.join(submit_argv(opts))
    log = run_dir.resolve() / DRIVER_DIR / "%j.log"
    directives = [
        f"--job-name=sv-{opts.study}-driver",
        f"--time={opts.walltime}",
        f"--signal=B:USR1@{opts.grace}",
        f"--output={log}",
        "--open-mode=append",  # a requeued link keeps what its first run wrote
        "--ntasks=1",
        "--cpus-per-task=1",
    ]
    if opts.partition:
        directives.append(f"--partition={opts.partition}")
    if opts.account:
        directives.append(f"--account={opts.account}")
    lines = ["#!/usr/bin/env bash", *(f"#SBATCH {d}" for d in directives)]
    warned = f"warned=1; ends=$(($(date +%s) + {opts.grace}))"
    lines += [
        "# Written by `supervisor submit`: one link of the driver's chain of jobs.",
        *opts.prologue,
        f"cd {shlex.quote(str(cwd))}",
        f"run={shlex.quote(str(run_dir))}",
        f'before=$({python} -m supervisor.cli chain "$run" --count)',
        f"{CHAIN_ENV}=1 {python} -m supervisor.cli {search} &",
        "driver=$!",
        "# The walltime warning and a SIGTERM stop the driver cleanly; wait again after a",
        "# trap fires, until the driver has recorded its trials and exited.",
        "warned=0 terminated=0 ends=",
        "# After the warning the job ends in GRACE s: the next link's sbatch is tried until then.",
        f"trap '{warned}; kill -USR1 $driver 2>/dev/null' USR1",
        "trap 'terminated=1; termed=$(date +%s); kill -TERM $driver 2>/dev/null' TERM",
        "status=1",
        "while kill -0 $driver 2>/dev/null; do wait $driver; status=$?; done",
        "# A SIGTERM before the walltime (Slurm's comes at its end, the warning GRACE s or",
        "# more before) is scancel, or a requeue that runs this link again: no next link",
        "# (the user's stop, or a second driver beside the requeued one).",
        'if [ $terminated = 1 ] && { [ $warned = 0 ] || [ "$termed" -lt $((ends - 5)) ]; }; then',
        f"  echo {shlex.quote(TERMINATED_LINE)}",
        "  exit $status",
        "fi",
        f'{python} -m supervisor.cli chain "$run" --since "$before"',
        "case $? in",
        f"  {MORE}) {CHAIN_ENV}=1 {driver_jobs.ENDS_ENV}=$ends exec {python} -m supervisor.cli"
        f" {resubmit} ;;",
        f"  {STUCK}) echo {shlex.quote(STUCK_LINE)} ;;",
        "esac",
        "exit $status",
    ]
    return "\n".join(lines) + "\n"


def search_argv(opts: SubmitOptions) -> list[str]:
    """The ``supervisor search`` command the driver job runs."""
    argv = ["search", opts.space_file, "--launcher", opts.launcher]
    if opts.runs_root != Path("runs"):
        argv += ["--runs-dir", str(opts.runs_root)]
    return [*argv, *opts.search_args, "--plain"]


def submit_argv(opts: SubmitOptions) -> list[str]:
    """The ``supervisor submit`` command that submits the next link."""
    argv = [
        "submit",
        opts.space_file,
        "--launcher",
        opts.launcher,
        "--walltime",
        opts.walltime,
        "--grace",
        str(opts.grace),
        "--max-jobs",
        str(opts.max_jobs),
    ]
    if opts.partition:
        argv += ["--partition", opts.partition]
    if opts.account:
        argv += ["--account", opts.account]
    if opts.runs_root != Path("runs"):
        argv += ["--runs-dir", str(opts.runs_root)]
    for line in opts.prologue:
        argv += ["--prologue", line]
    return [*argv, "--", *opts.search_args]


def read_chain(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / DRIVER_DIR / CHAIN_FILE
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable driver chain ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(j, dict) for j in data):
        raise UserError(f"{path}: not a driver chain (expected a list of jobs)")
    return data


def submit(opts: SubmitOptions, cwd: Path | None = None) -> tuple[str | None, str]:
    """Submit the next driver job of the run (or, with ``dry_run``, only show its script).
    Returns the job id (None on a dry run) and the script."""
    check(opts)
    cwd = cwd or Path.cwd()
    run_dir = opts.runs_root / opts.study
    rundir.check_owned(run_dir)  # not another user's, nor a link to elsewhere
    job_secrets.check_driver_password(job_secrets.storage_of(opts.search_args, run_dir))
    chain = read_chain(run_dir)
    if len(chain) >= opts.max_jobs:
        raise UserError(
            f"{run_dir}: the driver chain has {len(chain)} jobs, --max-jobs {opts.max_jobs}:"
            " not submitting another (raise --max-jobs to go on)"
        )
    script = driver_script(opts, run_dir, cwd)
    if opts.dry_run:
        return None, script
    timeout = _submit_timeout(opts.launcher)
    driver = driver_jobs.Driver(f"sv-{opts.study}-driver", run_dir / DRIVER_DIR / SCRIPT_FILE)
    if running := driver_jobs.queued(driver, timeout):
        raise UserError(
            f"{run_dir}: driver job {running[0]} of this study is in the queue already: not"
            f" submitting a second driver (`scancel {running[0]}` first to replace it)"
        )
    # What sbatch would refuse (a partition that does not exist, more memory than a node
    # has) is refused before the run directory is written.
    tried = driver_jobs.sbatch(["--test-only"], script, timeout)
    if tried.returncode != 0:
        raise UserError(f"sbatch refuses the driver job: {driver_jobs.first_error(tried.stderr)}")
    # The run directory as a search makes it: its owner's only (it waits for the job).
    rundir.make_private(run_dir, journal=False)
    folder = run_dir / DRIVER_DIR
    folder.mkdir(exist_ok=True)
    atomic.write(driver.script, script, mode=0o700)
    # Its absolute path: what squeue shows of the job (%o), whatever folder asks.
    done = driver_jobs.sbatch(["--parsable", str(driver.script.resolve())], None, timeout, driver)
    if done.returncode != 0:
        if os.environ.get(CHAIN_ENV):  # no next link: nobody for the jobs the last kept
            from supervisor.clusters.handover import cancel_kept

            cancel_kept(run_dir, timeout)
        raise UserError(f"sbatch refused the driver job: {done.stderr.strip()[:500]}")
    job_id = done.stdout.strip().split(";")[0]
    chain.append({"job_id": job_id, "submitted": time.time(), "link": len(chain) + 1})
    atomic.write(folder / CHAIN_FILE, json.dumps(chain, indent=2) + "\n", mode=0o600)
    if not os.environ.get(CHAIN_ENV):  # typed by the user, not a link submitting the next
        _withdraw_stop(run_dir)
    return job_id, script


def _withdraw_stop(run_dir: Path) -> None:
    """A ``supervisor stop`` ends every link that starts after it (``search``): one the
    user submits now would stop at once. As a typed ``supervisor search`` does, the user's
    ``submit`` withdraws it."""
    if not (run_dir / rundir.RUN_FILE).is_file():
        return
    from supervisor.study import stop_request
    from supervisor.study.storage import load_study

    path, record = rundir.resolve(str(run_dir))
    study = load_study(record.storage_url(path), record.study)
    if (request := stop_request.read(study)) is not None:
        stop_request.withdraw(study)
        print(f"Withdrew the stop request ({request.line()})", file=sys.stderr)


def _submit_timeout(launcher: str) -> float:
    """The launcher profile's ``submit_timeout``: sbatch gets as long for the driver."""
    from supervisor.clusters.profile import load
    from supervisor.clusters.unanswered import DEFAULT_TIMEOUT

    return float(load(launcher).extra.get("submit_timeout", DEFAULT_TIMEOUT))


def next_link(done_before: int, done_now: int, left: int | None) -> int:
    """The chain's decision after a link: DONE, MORE or STUCK."""
    if left == 0:
        return DONE
    return MORE if done_now > done_before else STUCK


def after_link(run_dir: Path, done_before: int, done_now: int, left: int | None) -> int:
    """``next_link``; where no next link follows, the worker jobs the link kept queued
    for it are cancelled (they would start for nobody)."""
    decision = next_link(done_before, done_now, left)
    if decision != MORE:
        from supervisor.clusters.handover import cancel_kept

        cancel_kept(run_dir)
    return decision
