"""Which of the user's batch jobs were submitted with a given job script: how a submission
that timed out is found in the queue (``supervisor.clusters.unanswered.Strays``).

dask-jobqueue submits each job with a temporary script of its own (``sbatch FILE``,
``qsub FILE``), and the batch system keeps that path: Slurm in ``squeue -o %o``, PBS Pro
and Torque in ``qstat -f`` (``Submit_arguments``; Torque's ``submit_args``), Grid Engine
in ``qstat -j`` (``script_file``). LSF (``bsub < FILE``: the script on its standard input)
and HTCondor (a submit description, no script) keep no such path: their submissions that
time out are asked again without a look (``findable``).
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Awaitable, Callable

QUERY_TIMEOUT = 30.0  # seconds a query of the queue may take
# A function that runs a command within a timeout and returns its standard output, raising
# RuntimeError when it fails or gives no answer (``unanswered.call``).
Call = Callable[[list[str], float], Awaitable[str]]
FINDABLE = ("slurm", "pbs", "sge")


def findable(kind: str) -> bool:
    return kind in FINDABLE


async def jobs_of(kind: str, scripts: set[str], call: Call) -> dict[str, str] | None:
    """The user's jobs submitted with one of ``scripts`` (their paths): script -> job id
    (as its cancel command takes it); None when the batch system does not answer."""
    try:
        if kind == "slurm":
            out = await call(
                ["squeue", "-h", "-u", getpass.getuser(), "-o", "%i %o"], QUERY_TIMEOUT
            )
            pairs = [line.strip().partition(" ")[::2] for line in out.splitlines()]
            return {s: job.split("_")[0] for job, s in pairs if s in scripts}
        if kind == "pbs":
            return _pbs(await call(["qstat", "-f"], QUERY_TIMEOUT), scripts)
        if kind == "sge":
            listed = await call(["qstat", "-u", getpass.getuser()], QUERY_TIMEOUT)
            ids = [f[0] for f in map(str.split, listed.splitlines()) if f and f[0].isdigit()]
            if not ids:
                return {}
            return _sge(await call(["qstat", "-j", ",".join(ids)], QUERY_TIMEOUT), scripts)
    except (OSError, RuntimeError):
        return None
    return {}


def _pbs(out: str, scripts: set[str]) -> dict[str, str]:
    """``qstat -f``: a "Job Id: ID" line per job, then "    key = value" lines; a long
    value goes on in lines that start with a tab."""
    found: dict[str, str] = {}
    job, key, values = "", "", dict[str, str]()
    for line in [*out.splitlines(), "Job Id: "]:
        if line.startswith("Job Id:"):
            args = values.get("Submit_arguments") or values.get("submit_args") or ""
            if job and (hit := scripts & set(args.split())):
                found[hit.pop()] = job
            job, key, values = line.partition(":")[2].strip(), "", {}
        elif line.startswith("\t") and key:  # wrapped mid-value: joined as it was
            values[key] += line[1:]
        elif " = " in line:
            key, _, value = line.lstrip().partition(" = ")
            values[key] = value
    return found


def _sge(out: str, scripts: set[str]) -> dict[str, str]:
    """``qstat -j IDS``: per job a block of "key:   value" lines after a line of '='."""
    found: dict[str, str] = {}
    job = ""
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key == "job_number":
            job = value.strip()
        elif key == "script_file" and value.strip() in scripts and job:
            found[value.strip()] = job
        elif re.fullmatch(r"=+", line.strip()):
            job = ""
    return found
