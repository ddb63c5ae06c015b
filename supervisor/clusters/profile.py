"""Launcher profiles: ``launchers/*.yaml`` -> a validated ``Launcher``. Nothing starts before.

A profile names the cluster ``kind`` and its dask-jobqueue (dask-mpi, local) keywords; those
left out or null are not passed on: the user's dask configuration and dask-jobqueue's
defaults apply. Every problem is a one-line ``file:line:col: key: problem``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.clusters.profile_calibration import apply_calibration
from supervisor.clusters.renewal import default_lifetime
from supervisor.clusters.script_values import control_character, texts_in, unreadable_walltime
from supervisor.config.reader import Reader, kind_of
from supervisor.config.yaml_source import KeyPath, parse_yaml, read_yaml
from supervisor.errors import UserError, did_you_mean

PROJECT_LAUNCHERS = Path(__file__).resolve().parent / "launchers"  # links ../../launchers
JOBQUEUE_KINDS = ("slurm", "pbs", "lsf", "sge", "htcondor")
KINDS = ("local", *JOBQUEUE_KINDS, "mpi")

# Value checks by name; see _ProfileParser.value.
_JOB_KEYS = {  # dask-jobqueue keywords shared by every batch scheduler
    "cores": "count",
    "processes": "count",
    "memory": "bytes",
    "python": "text",
    "interface": "text",
    "death_timeout": "seconds",
    "local_directory": "text",
    "log_directory": "text",
    "shebang": "text",
    "job_name": "text",
    "worker_extra_args": "texts",
    "job_extra_directives": "texts",
    "job_directives_skip": "texts",
    "job_script_prologue": "texts",
    "scheduler_options": "mapping",
}
_SCHEDULER_KEYS: dict[str, dict[str, str]] = {  # and those of one scheduler
    "slurm": {
        "queue": "text",
        "account": "text",
        "walltime": "walltime",
        "job_cpu": "count",
        "job_mem": "bytes",
    },
    "pbs": {"queue": "text", "account": "text", "walltime": "walltime", "resource_spec": "text"},
    "lsf": {
        "queue": "text",
        "project": "text",
        "walltime": "walltime",
        "ncpus": "count",
        "mem": "byte_count",
        "lsf_units": "text",
        "use_stdin": "flag",
    },
    "sge": {"queue": "text", "project": "text", "walltime": "walltime", "resource_spec": "text"},
    "htcondor": {
        "disk": "bytes",
        "job_extra_directives": "mapping",  # HTCondor submit-file lines: key: value
        "submit_command_extra": "texts",
        "cancel_command_extra": "texts",
    },
}
_SUPERVISOR_JOB_KEYS = {  # ours, not dask-jobqueue's
    "min_jobs": "count0",
    "max_jobs": "count",
    "gpus": "count0",
    "trials_per_gpu": "count",
    "lifetime": "lifetime",
    "lifetime_stagger": "seconds",
    "tls": "tls",
    "dashboard": "dashboard",
    "calibration": "calibration",
    "submit_timeout": "seconds",  # for the submit and cancel commands
}
KEYS: dict[str, dict[str, str]] = {
    "local": {
        "workers": "count",
        "threads": "count",
        "dashboard": "dashboard",
        "calibration": "calibration",
    },
    **{k: {**_JOB_KEYS, **_SCHEDULER_KEYS[k], **_SUPERVISOR_JOB_KEYS} for k in JOBQUEUE_KINDS},
    "mpi": {
        "threads": "count",
        "interface": "text",
        "local_directory": "text",
        "memory_limit": "bytes",
        "tls": "tls",
        "dashboard": "dashboard",
        "calibration": "calibration",
    },
}
# Written by `supervisor calibrate --write PROFILE`; keys given in the profile win over it.
CALIBRATION_KEYS = ("benchmark", "threads_per_trial", "trials_per_node", "gpus")  # gpus: optional
SUPERVISOR_KEYS = frozenset({*_SUPERVISOR_JOB_KEYS, "workers", "threads"})  # not jobqueue's


@dataclass(frozen=True)
class TlsFiles:
    """Certificates the user already has: one CA, and a cert + key used by every role."""

    ca_file: str
    cert: str
    key: str


@dataclass(frozen=True)
class Launcher:
    file: str
    kind: str
    keywords: dict[str, Any]  # set in the file and passed to the cluster class as they are
    cores: int = 1  # per batch job (from the file or the dask config)
    processes: int = 1  # worker processes per job; each runs one trial at a time
    min_jobs: int = 0
    max_jobs: int = 1
    gpus: int = 0  # per batch job
    trials_per_gpu: int = 1  # worker processes (trials) packed on each GPU
    walltime: float | None = None  # seconds, of one batch job
    lifetime: float | None = None  # seconds a worker lives before it retires; None: no limit
    lifetime_stagger: float = 0.0
    tls: bool | TlsFiles = True
    dashboard: str | None = None  # None: the command line's --dashboard
    extra: dict[str, Any] = field(default_factory=dict)  # workers, threads; submit_timeout
    calibration: dict[str, Any] | None = None  # the section, where it sized the cluster

    @property
    def is_jobqueue(self) -> bool:
        return self.kind in JOBQUEUE_KINDS

    @property
    def threads_per_trial(self) -> int:
        return max(1, self.cores // self.processes)

    @property
    def slots(self) -> int:
        """Trials running at once when every job the profile allows is up."""
        return self.max_jobs * self.processes


def profile_path(ref: str) -> Path:
    """A file path, or a profile name looked up in ./launchers/ then the project's."""
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        return Path(ref)
    for folder in (Path("launchers"), PROJECT_LAUNCHERS):
        candidate = folder / f"{ref}.yaml"
        if candidate.is_file():
            return candidate
    names = sorted({p.stem for p in PROJECT_LAUNCHERS.glob("*.yaml")})
    raise UserError(
        f"--launcher {ref!r}: no such profile{did_you_mean(ref, names)}; named profiles:"
        f" {', '.join(names)}; or give a path to a YAML file"
    )


def load(ref: str, text: str | None = None) -> Launcher:
    """Read and validate a launcher profile (a path or a name; ``text``: its new text)."""
    src = read_yaml(profile_path(ref)) if text is None else parse_yaml(text, ref)
    return _ProfileParser(src).profile()


def walltime_seconds(text: str, kind: str) -> float | None:
    """Seconds in a batch walltime, in the scheduler's own syntax; None when unreadable.

    Slurm: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S. PBS, SGE: S, M:S, H:M:S. LSF: M, H:M.
    """
    text = text.strip()
    days = 0
    if kind == "slurm" and (m := re.fullmatch(r"(\d+)-(.+)", text)):
        days, text = int(m.group(1)), m.group(2)
        parts = text.split(":")
        parts += ["0"] * (3 - len(parts))  # after a day count: hours[:minutes[:seconds]]
    else:
        parts = text.split(":")
    if not 1 <= len(parts) <= (2 if kind == "lsf" else 3) or not all(p.isdigit() for p in parts):
        return None  # LSF's -W has no seconds: bsub refuses 01:00:00
    values = [int(p) for p in parts]
    if len(values) == 1:
        seconds = values[0] if kind in ("pbs", "sge") else values[0] * 60
    elif len(values) == 2:
        unit = 3600 if kind == "lsf" else 60  # LSF's H:M, the others' M:S
        seconds = values[0] * unit + values[1] * unit // 60
    else:
        seconds = values[0] * 3600 + values[1] * 60 + values[2]
    return float(days * 86400 + seconds)


class _ProfileParser(Reader):
    """Reuses the search-space parser's generic checks (mapping, integer, string...)."""

    def profile(self) -> Launcher:
        data = self.src.data
        if not isinstance(data, dict):
            raise self.err((), f"expected a mapping with 'kind', got {kind_of(data)}")
        kind = data.get("kind")
        if "kind" not in data:
            raise self.err((), f"missing 'kind' (one of {', '.join(KINDS)})")
        if kind not in KINDS:
            hint = did_you_mean(str(kind), KINDS) if isinstance(kind, str) else ""
            raise self.err(("kind",), f"expected one of {', '.join(KINDS)}, got {kind!r}{hint}")
        values: dict[str, Any] = {}
        for raw_key, value in data.items():
            key = raw_key.replace("-", "_")  # dask config spells keys with dashes
            path = (raw_key,)
            if key == "kind":
                continue
            if key not in KEYS[kind]:
                raise self.err(
                    path,
                    f"unknown key for a {kind} profile{did_you_mean(key, KEYS[kind])};"
                    f" expected one of {', '.join(KEYS[kind])}",
                )
            if key in values:
                raise self.err(path, "given twice (once with dashes, once with underscores)")
            if value is not None:  # null: not set here, the dask config decides
                values[key] = self.value(KEYS[kind][key], value, path, kind)
        dashboard = values.pop("dashboard", None)
        self.calibration = apply_calibration(kind, values, values.pop("calibration", None))
        if kind == "local" or kind == "mpi":
            tls = values.pop("tls", kind == "mpi")
            extra: dict[str, Any] = {
                k: values.pop(k) for k in ("workers", "threads") if k in values
            }
            return Launcher(
                self.src.file,
                kind,
                values,
                tls=tls,
                dashboard=dashboard,
                extra=extra,
                calibration=self.calibration,
            )
        return self.jobqueue(kind, values, dashboard)

    def jobqueue(self, kind: str, values: dict[str, Any], dashboard: str | None) -> Launcher:
        import dask

        from supervisor.clusters.jobqueue_module import dask_jobqueue

        dask_jobqueue()  # adds dask-jobqueue's defaults to the dask config

        def configured(key: str) -> Any:
            name = "name" if key == "job_name" else key.replace("_", "-")
            return values.get(key, dask.config.get(f"jobqueue.{kind}.{name}", None))

        for required, example in (("cores", "8"), ("memory", "16GiB")):
            if configured(required) is None:
                raise self.err(
                    (),
                    f"missing {required!r}: set it here (e.g. {required}: {example}) or in the"
                    f" dask config (jobqueue.{kind}.{required})",
                )
        cores = int(configured("cores"))
        gpus = values.get("gpus", 0)
        if "trials_per_gpu" in values and not gpus:
            raise self.err(self.where("trials_per_gpu"), "needs gpus > 0")
        processes, per_gpu = self.gpu_packing(
            gpus, values.get("trials_per_gpu"), configured("processes"), cores
        )
        if processes > cores:
            raise self.err(
                self.where("processes"), f"{processes} processes need at least as many cores"
            )
        min_jobs = values.pop("min_jobs", 0)
        max_jobs = values.pop("max_jobs", max(1, min_jobs))
        if min_jobs > max_jobs:
            raise self.err(
                self.where("min_jobs"), f"min_jobs ({min_jobs}) exceeds max_jobs ({max_jobs})"
            )
        walltime = None
        if kind != "htcondor":
            text = str(configured("walltime"))
            walltime = walltime_seconds(text, kind)
            if walltime is None or walltime <= 0:
                raise self.err(self.where("walltime"), unreadable_walltime(text, kind, walltime))
        lifetime, stagger = self.lifetime(values, walltime, configured("worker_extra_args"))
        return Launcher(
            file=self.src.file,
            kind=kind,
            keywords={k: v for k, v in values.items() if k not in SUPERVISOR_KEYS},
            cores=cores,
            processes=int(processes),
            min_jobs=min_jobs,
            max_jobs=max_jobs,
            gpus=gpus,
            trials_per_gpu=per_gpu,
            walltime=walltime,
            lifetime=lifetime,
            lifetime_stagger=stagger,
            tls=values.get("tls", True),
            dashboard=dashboard,
            extra={k: values[k] for k in ("submit_timeout",) if k in values},
            calibration=self.calibration,
        )

    def gpu_packing(
        self, gpus: int, per_gpu: int | None, processes: int | None, cores: int
    ) -> tuple[int, int]:
        """(worker processes, trials per GPU) of a job: one trial per worker process, and
        on a GPU job the same number of workers on every GPU."""
        from distributed.deploy.local import nprocesses_nthreads

        if not gpus:
            return processes or nprocesses_nthreads(cores)[0], 1
        if processes is None:
            return gpus * (per_gpu or 1), per_gpu or 1
        if processes % gpus or (per_gpu is not None and processes != gpus * per_gpu):
            wanted = f"{gpus} x trials_per_gpu ({per_gpu})" if per_gpu else f"a multiple of {gpus}"
            raise self.err(
                self.where("processes"),
                f"{processes} worker processes on {gpus} GPU(s): expected {wanted}, the same"
                " number of trials on every GPU; or leave processes out",
            )
        return processes, processes // gpus

    def lifetime(
        self, values: dict[str, Any], walltime: float | None, worker_args: list[str] | None
    ) -> tuple[float | None, float]:
        lifetime = values.get("lifetime")
        if lifetime is False or "--lifetime" in (worker_args or []):
            return None, 0.0  # off, or the user's own --lifetime in worker_extra_args
        if lifetime is None:
            if walltime is None:
                return None, 0.0
            # The profile's stagger comes off the lifetime: added to the default one, it
            # made the longest-lived jobs outlive the walltime, killed mid-trial.
            derived, stagger = default_lifetime(walltime, values.get("lifetime_stagger"))
            if derived <= 0:
                raise self.err(
                    self.where("lifetime_stagger"),
                    f"{stagger:g} s leaves the jobs no lifetime within the walltime"
                    f" ({walltime:g} s, less {walltime - stagger - derived:g} s to start"
                    " and retire)",
                )
            return derived, stagger
        stagger = values.get("lifetime_stagger", min(0.05 * lifetime, 300.0))
        if walltime is not None and lifetime + stagger >= walltime:
            raise self.err(
                self.where("lifetime"),
                f"lifetime ({lifetime:g} s) + lifetime_stagger ({stagger:g} s) must end before"
                f" the walltime ({walltime:g} s), or jobs are killed mid-trial",
            )
        return lifetime, stagger

    def where(self, key: str) -> KeyPath:
        """The key's path as written (with dashes or underscores), for error positions."""
        for raw in self.src.data:
            if raw.replace("-", "_") == key:
                return (raw,)
        return (key,)

    def value(self, check: str, value: Any, path: KeyPath, kind: str) -> Any:
        if check in ("count", "count0"):
            return self.integer(value, path, 0 if check == "count0" else 1, 1_000_000)
        if check in ("text", "texts", "mapping"):
            self.one_line(value, path)
        if check == "text":
            return self.string(value, path)
        if check == "dashboard":  # its host is bound where the scheduler runs: syntax here
            from supervisor.clusters.addresses import dashboard_problem

            problem = dashboard_problem(self.string(value, path), bind=False)
            if problem:
                raise self.err(path, f"{problem}, got {value!r}")
            return value
        if check == "flag":
            if not isinstance(value, bool):
                raise self.err(path, f"expected true or false, got {kind_of(value)}")
            return value
        if check in ("bytes", "byte_count"):
            return self.size(value, path, as_int=check == "byte_count")
        if check == "seconds":
            return self.duration(value, path)
        if check == "lifetime":
            return False if value is False else self.duration(value, path)
        if check == "walltime":
            if isinstance(value, int) and not isinstance(value, bool):
                # YAML 1.1 reads an unquoted 12:00:00 as the base-60 number 43200.
                raise self.err(
                    path, f"got the number {value}: quote the walltime, e.g. '12:00:00'"
                )
            text = self.string(value, path)
            if walltime_seconds(text, kind) is None:
                raise self.err(path, unreadable_walltime(value, kind))
            return text
        if check == "texts":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise self.err(path, f"expected a list of strings, got {kind_of(value)}")
            return value
        if check == "mapping":
            if not isinstance(value, dict):
                raise self.err(path, f"expected a mapping, got {kind_of(value)}")
            return value
        if check == "tls":
            return self.tls(value, path)
        if check == "calibration":
            spec = self.mapping(value, path, CALIBRATION_KEYS)
            for key in CALIBRATION_KEYS[:3]:
                if key not in spec:
                    raise self.err(path, f"missing {key!r}")
            self.string(spec["benchmark"], (*path, "benchmark"))
            for key in (k for k in CALIBRATION_KEYS[1:] if k in spec):
                self.integer(spec[key], (*path, key), 1, 1_000_000)
            return spec
        raise AssertionError(check)

    def one_line(self, value: Any, path: KeyPath) -> None:
        """Every text in ``value`` stays on one line of a job script: a newline would add
        a directive or a command of its own (``queue: "gpu\n#SBATCH --uid=0"``)."""
        for text in texts_in(value):
            char = control_character(text)
            if char:
                raise self.err(path, f"{text!r} holds a control character ({char})")

    def size(self, value: Any, path: KeyPath, as_int: bool) -> str | int:
        from dask.utils import parse_bytes

        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        try:
            count = parse_bytes(value) if isinstance(value, str) else None
        except (ValueError, OverflowError):  # 1e999GB: dask turns inf into an int
            count = None
        if not count or count <= 0 or not math.isfinite(count):
            raise self.err(path, f"expected a size such as 4GiB or 500MB, got {value!r}")
        return int(count) if as_int else value

    def tls(self, value: Any, path: KeyPath) -> bool | TlsFiles:
        if isinstance(value, bool):
            return value
        spec = self.mapping(value, path, ("ca_file", "cert", "key"))
        files = {}
        for key in ("ca_file", "cert", "key"):
            name = self.string(spec.get(key), (*path, key))
            if not Path(name).expanduser().is_file():
                raise self.err((*path, key), f"no such file: {name}")
            files[key] = str(Path(name).expanduser())
        return TlsFiles(**files)
