"""Checks a command makes before its first write: a refused command changes nothing.

Flags are checked against the limits the space file has (a flag must not get past what
the file may not say), directories are tried for writing, outputs are kept off the files
of every run (this one's and others'), and addresses are probed
(``supervisor.clusters.addresses``). Every problem is a one-line ``UserError`` naming the
flag.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import supervisor.rundir as rundir
from supervisor.errors import UserError

if TYPE_CHECKING:
    from supervisor.clusters.profile import Launcher

MAX_TRIALS = 10_000_000  # as budget.trials and budget.epochs in a space file
MAX_EPOCHS = 100_000
MAX_SECONDS = 365 * 86400.0  # as budget.timeout
MAX_PREFETCH = 100_000
PROPOSER = {"auto": None, "on": True, "off": False}  # --proposer -> the driver's argument
# Local worker processes per usable core: more only thrash (each holds a model and data).
LOCAL_WORKERS_PER_CORE = 4


def count(value: object, flag: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UserError(f"{flag} {value!r}: expected an integer from {low} to {high}")


def seconds(
    value: object, flag: str, low: float = 1.0, high: float = MAX_SECONDS, units: str = ""
) -> None:
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or not low <= number <= high:
        raise UserError(f"{flag} {value!r}: expected seconds{units} from {low:g} to {high:g}")


def study_name(value: str | None) -> None:
    if value is not None and not rundir.STUDY_NAME.fullmatch(value):
        raise UserError(
            f"--study {value!r}: expected a name of letters, digits, '_', '.', '-'"
            " (at most 128, not starting with '.', '_' or '-')"
        )


def local_cluster(
    workers: int | None,
    threads: int | None,
    labels: tuple[str, str] = ("--workers", "--threads"),
) -> None:
    """Sizes of a cluster on this machine, against its cores; ``labels`` name where the
    worker and thread counts came from."""
    from supervisor.benchmarks.cores import usable_cores

    cores = usable_cores()
    most = LOCAL_WORKERS_PER_CORE * cores
    if workers is not None and workers > most:
        raise UserError(
            f"{labels[0]} {workers}: at most {most} local worker processes on this"
            f" machine ({LOCAL_WORKERS_PER_CORE} per usable core, {cores} cores); for more,"
            " use a batch launcher (--launcher) or --scheduler"
        )
    if threads is not None and threads > cores:
        raise UserError(f"{labels[1]} {threads}: this machine has {cores} usable cores")


def search_flags(opts: Any) -> None:  # a SearchOptions (search imports this module)
    """What can be told from the flags alone (also for --dry-run): limits and syntax."""
    from supervisor.clusters.addresses import check_dashboard
    from supervisor.clusters.launch import workers_with_scheduler

    study_name(opts.study)
    for flag, value, high in (
        ("--trials", opts.trials, MAX_TRIALS),
        ("--epochs", opts.epochs, MAX_EPOCHS),
        ("--workers", opts.workers, 1_000_000),
        ("--threads", opts.threads, 1_000_000),
    ):
        if value is not None:
            count(value, flag, 1, high)
    if opts.prefetch is not None:
        count(opts.prefetch, "--prefetch", 0, MAX_PREFETCH)
    if opts.proposer not in PROPOSER:
        raise UserError(f"--proposer {opts.proposer!r}: expected auto, on or off")
    if opts.timeout is not None:
        seconds(opts.timeout, "--timeout", units=" (or 90s, 30m, 2h, 1h30m, 1d)")
    if opts.storage is not None:
        storage_url(opts.storage)
    if opts.scheduler is not None and not opts.scheduler.strip():  # else: a local cluster
        raise UserError(
            f"--scheduler {opts.scheduler!r}: expected an address such as tcp://host:8786"
        )
    if not opts.scheduler and not opts.launcher:
        local_cluster(opts.workers, opts.threads)
    workers_with_scheduler(opts.workers, opts.scheduler)
    if opts.dashboard is not None:
        if opts.scheduler:  # the dashboard was ignored in silence
            raise UserError(
                "--scheduler and --dashboard exclude each other: the running scheduler serves"
                " its own dashboard (leave --dashboard out)"
            )
        check_dashboard(opts.dashboard, bind=False)  # the full check binds: not on a dry run


def proposer_fits(proposer: str, exp: Any) -> None:  # an Experiment
    """``--proposer on`` needs a sampler that models a bounded history (the storage is
    always one other processes read: the journal file or a database)."""
    from supervisor.config.samplers import history_limit

    if proposer == "on" and history_limit(exp.sampler, exp.sampler_options) is None:
        raise UserError(
            f"--proposer on: sampler {exp.sampler!r} does not model a bounded history"
            " (tpe, gp and turbo do, unless their history option is null)"
        )


def search_environment(opts: Any, launcher: Launcher | None) -> None:
    """What needs this machine: directories writable, addresses usable, storage file."""
    from supervisor.clusters.addresses import DEFAULT_DASHBOARD

    writable_dir(opts.runs_root, "--runs-dir")
    if opts.report:
        writable_dir(opts.reports_root, "--reports-dir")
    if opts.storage is not None:
        storage_place(opts.storage)
    dashboard = opts.dashboard or DEFAULT_DASHBOARD
    cluster_environment(opts.workers, opts.threads, opts.scheduler, launcher, dashboard)


def cluster_environment(
    workers: int | None,
    threads: int | None,
    scheduler: str | None,
    launcher: Launcher | None,
    dashboard: str,
) -> None:
    """The cluster a command would start or join: sized for this machine when local, its
    scheduler answering, its dashboard address one this machine can listen on."""
    from supervisor.clusters.addresses import check_dashboard, check_scheduler

    for flag, value in (("--workers", workers), ("--threads", threads)):
        if value is not None:
            count(value, flag, 1, 1_000_000)
    if scheduler is not None:
        if not scheduler.strip():
            raise UserError("--scheduler '': expected an address such as tcp://host:8786")
        check_scheduler(scheduler)
        return
    if launcher is None:
        local_cluster(workers, threads)
    elif launcher.kind == "local":
        extra, file = launcher.extra, launcher.file
        local_cluster(
            workers or extra.get("workers"),
            threads or extra.get("threads"),
            (
                "--workers" if workers else f"{file}: workers",
                "--threads" if threads else f"{file}: threads",
            ),
        )
    if launcher is None or launcher.kind != "mpi":  # mpi: the scheduler is another rank
        check_dashboard((launcher.dashboard if launcher else None) or dashboard)


def batch_jobs(launcher: Launcher | None, run_dir: Path, study: str) -> None:
    """Worker jobs the batch system would refuse are refused now, not waited for."""
    if launcher is None or not launcher.is_jobqueue:
        return
    import shutil

    from supervisor.clusters.jobqueue import refused_by_slurm, submit_command

    command = submit_command(launcher.kind)
    if shutil.which(command) is None:  # the cluster would start, then submit nothing
        raise UserError(
            f"{launcher.file}: {command} not found on the PATH: a {launcher.kind} profile"
            f" submits its worker jobs with it (run the search where {command} is, e.g. on"
            " a login node of the cluster)"
        )
    _run_dir_in_scripts(launcher, run_dir, study)
    refused = refused_by_slurm(launcher, run_dir, study)
    if refused:
        raise UserError(f"{launcher.file}: sbatch refuses its worker jobs: {refused}")


def _run_dir_in_scripts(launcher: Launcher, run_dir: Path, study: str) -> None:
    """A run directory the worker jobs' script names (their logs, the TLS files) but
    cannot hold: a space split its ``#SBATCH -e`` line and the worker's ``--tls-ca-file``
    argument, and every worker failed at start while the search waited for them."""
    from supervisor.clusters.jobqueue import job_script
    from supervisor.clusters.script_values import NOT_IN_A_PATH

    path = str(run_dir.resolve())
    if NOT_IN_A_PATH.search(path) and path in job_script(launcher, run_dir, study):
        raise UserError(
            f"{run_dir}: the worker jobs' logs and TLS files go under {path!r}, which a job"
            " script cannot hold (whitespace, quotes, '#' or '\\'); use a --runs-dir without"
            " them (or set log_directory and tls in the profile)"
        )


def storage_url(url: str) -> None:
    if not (url.startswith("journal:") or "://" in url or url.endswith((".log", ".jsonl"))):
        from supervisor.study.storage import redact

        raise UserError(
            f"--storage {redact(url)!r}: expected a URL such as sqlite:///x.db, "
            "postgresql://user@host/db or journal:/path/to/journal.log"
        )
    if url.startswith("sqlite"):  # in memory: the search would run and its results vanish
        from supervisor.study.storage import redact, sqlite_problem

        problem = sqlite_problem(url)
        if problem is not None:
            raise UserError(f"--storage {redact(url)!r}: {problem}")


def storage_place(url: str, *, probe: bool = True) -> None:
    """A storage file's folder exists and the file is a file (opening one would create
    folders or fail half-way); ``probe``: a new file's folder is tried for writing."""
    from supervisor.study.storage import JOURNAL_PREFIX, redact

    path = None
    if url.startswith(JOURNAL_PREFIX):
        path = url[len(JOURNAL_PREFIX) :]
    elif "://" not in url:
        path = url
    elif url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = url[len("sqlite:///") :].partition("?")[0]
    if path is None:
        return
    shown = redact(url)
    if not path:
        raise UserError(f"--storage {shown!r}: no file name")
    file = Path(path)
    if file.is_dir():
        raise UserError(f"--storage {shown!r}: {file} is a directory")
    if file.exists() and not file.is_file():
        raise UserError(f"--storage {shown!r}: {file} is not a regular file")
    if not file.parent.is_dir():
        raise UserError(f"--storage {shown!r}: folder {file.parent} does not exist")
    if probe and not file.exists():
        _try_writing(file.parent, f"--storage {shown!r}")


def writable_dir(path: Path, flag: str, label: str | None = None, *, probe: bool = True) -> None:
    """``path`` is a directory this process can write in, or can be made one: its parent
    exists. Tried, not guessed from modes (root, read-only mounts, ACLs); without
    ``probe`` (a dry run, which writes nothing), only looked at. ``label`` starts the
    message (default: the flag and the path)."""
    label = label or f"{flag} {path}"
    if path.is_dir():
        if probe:
            _try_writing(path, label)
        return
    if path.exists() or path.is_symlink():
        raise UserError(f"{label}: {path} is not a directory")
    parent = path.parent
    if not parent.is_dir():
        state = "is not a directory" if parent.exists() else "does not exist"
        raise UserError(f"{label}: {parent} {state}")
    if probe:
        _try_writing(parent, label)


def makeable_dir(path: Path, label: str) -> None:
    """``path`` is a directory this process can write in, or ``mkdir -p`` can make it:
    its nearest existing ancestor is a directory it can write in."""
    existing = path
    while not (existing.exists() or existing.is_symlink()) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{label}: {existing} is not a directory")
    _try_writing(existing, label)


def _try_writing(folder: Path, what: str) -> None:
    try:
        fd, name = tempfile.mkstemp(prefix=".supervisor-write-check-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise UserError(f"{what}: cannot write in {folder} ({exc.strerror or exc})") from None


def output_file(path: Path, flag: str, run_dir: Path, keep: Iterable[Path] = ()) -> None:
    """An output file a command may write: not a directory or a device, in a folder it
    can write in, and no file of a run: not one of the run's own files (``keep``: its
    storage, record, space), no file in a run directory (this run's or another's) but
    the outputs commands rewrite there, nor the files of a run beside this one."""
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a directory; give a file name")
    if path.exists() and not path.is_file():
        raise UserError(f"{flag} {path}: not a regular file")
    target = path.resolve()
    inside = run_dir.resolve()
    if target in {p.resolve() for p in keep}:
        raise UserError(f"{flag} {path}: would overwrite a file of the run ({target.name})")
    owner = _run_holding(target, inside)
    if owner is not None and path.exists() and not _is_output(owner, target):
        which = "the run" if owner == inside else f"run {_shown(owner)}"
        raise UserError(f"{flag} {path}: would overwrite a file of {which} ({target.name})")
    for other, files in _runs_beside(inside):
        if target in files:
            raise UserError(
                f"{flag} {path}: would overwrite a file of run {_shown(other)} ({target.name})"
            )
    writable_dir(path.parent, flag, f"{flag} {path}")


def _run_holding(target: Path, run_dir: Path) -> Path | None:
    """The innermost run directory ``target`` lies in: ``run_dir`` or a folder holding a
    run record (another run, or one whose folder was copied or moved)."""
    for folder in target.parents:
        if folder == run_dir or os.path.lexists(folder / rundir.RUN_FILE):
            return folder
    return None


def _runs_beside(run_dir: Path) -> Iterator[tuple[Path, set[Path]]]:
    """The other runs under the runs folder of ``run_dir``, each with the files of its
    own outside its folder (storage, space file). A record that cannot be read names
    none: its folder is guarded all the same (``_run_holding``)."""
    for record_file in sorted(run_dir.parent.glob(f"*/{rundir.RUN_FILE}")):
        if record_file.parent == run_dir:
            continue
        try:
            record = rundir.read_record_file(record_file)
        except UserError:
            continue
        yield record_file.parent, {p.resolve() for p in run_files(record_file.parent, record)}


def _shown(folder: Path) -> str:
    """A folder as the user would name it: relative to here when below it."""
    try:
        return str(folder.relative_to(Path.cwd()))
    except ValueError:
        return str(folder)


def _is_output(run_dir: Path, target: Path) -> bool:
    """A file of a run directory that commands write for the user and may rewrite: the
    trials table, and the models ``export --model`` writes by default (``model-N.keras``)."""
    if target.parent != run_dir:
        return False
    names = ("trials.csv", "trials.parquet", "trials.manifest.json")
    return target.name in names or bool(re.fullmatch(_MODEL_OUTPUT, target.name))


_MODEL_OUTPUT = r"model-\d+\.(keras|npz|manifest\.json)"


def run_files(run_dir: Path, record: rundir.RunRecord) -> list[Path]:
    """The files an output must never replace: the run's storage, record and space."""
    files = [run_dir / rundir.RUN_FILE, run_dir / rundir.JOURNAL_FILE, Path(record.space_file)]
    storage = record.storage or ""
    if storage.startswith("sqlite:///"):
        files.append(Path(storage[len("sqlite:///") :].partition("?")[0]))
    elif storage.startswith("journal:"):
        files.append(Path(storage[len("journal:") :]))
    return files


def profile_to_write(path: Path) -> None:
    """A launcher profile ``calibrate --write`` may add to: an existing, valid file, or a
    new one (a local profile) in a folder that exists."""
    from supervisor.clusters import profile

    if path.is_dir():
        raise UserError(f"--write {path}: is a directory, not a launcher profile file")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise UserError(f"--write {path}: not a regular file")
        ref = str(path)
        profile.load(ref if "/" in ref else f"./{ref}")  # a file, never a profile name
        # Replaced through a new file, a read-only profile lost its protection silently
        # (root and any owner of the folder may replace it); its mode bits decide.
        if not os.stat(path).st_mode & 0o222 or not os.access(path, os.W_OK):
            raise UserError(f"--write {path}: read-only; chmod u+w {path} to write into it")
    elif path.suffix not in (".yaml", ".yml"):
        # ``--write slurm`` made ./slurm, a local profile that --launcher slurm never reads
        # (a name without .yaml is a profile in launchers/).
        raise UserError(
            f"--write {path}: no such file; a new launcher profile's name ends in .yaml"
            f" (e.g. {path.name}.yaml), and --launcher finds it by that path"
        )
    # A link is written through (calibrate_profile.write_into_profile): its target's folder counts.
    parent = path.resolve().parent if path.is_symlink() else path.parent
    if not parent.is_dir():
        state = "is not a directory" if parent.exists() else "does not exist"
        raise UserError(f"--write {path}: folder {parent} {state}")
    writable_dir(parent, "--write")
