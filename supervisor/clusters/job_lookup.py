"""Which of the user's batch jobs were submitted with a given job script: how a submission
that timed out is found in the queue (``supervisor.clusters.unanswered.Strays``).

dask-jobqueue submits each job with a temporary script of its own (``sbatch FILE``,
``qsub FILE``), and the batch system keeps that path: Slurm in ``squeue -o %o``, PBS Pro
and Torque in ``qstat -f`` (``Submit_arguments``; Torque's ``submit_args``), Grid Engine
in ``qstat -j`` (``script_file``). LSF (``bsub < FILE``: the script on its standard input)
and HTCondor (a submit description, no script) keep no such path: their submissions carry
it (``marked``), in LSF's job description (``bsub -Jd``, ``bjobs -o job_description``) and
in an attribute of the HTCondor job (``condor_submit -append``, ``condor_q -af``). Before,
a timed-out submission whose job was taken all the same was asked again beside it, and
that job ran a worker nobody counted for the whole campaign.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Awaitable, Callable

QUERY_TIMEOUT = 30.0  # seconds a query of the queue may take
# A function that runs a command within a timeout and returns its standard output, raising
# RuntimeError when it fails or gives no answer (``unanswered.call``).
Call = Callable[[list[str], float], Awaitable[str]]
FINDABLE = ("slurm", "pbs", "sge", "lsf", "htcondor")
HTCONDOR_MARK = "SupervisorScript"  # the HTCondor job attribute that holds the script's path
LSF_NONE = ("no unfinished job found", "no job found")  # bjobs with none to show fails


def findable(kind: str) -> bool:
    return kind in FINDABLE


def marked(kind: str, command: list[str], script: str) -> list[str]:
    """The submit command's words (before the script) with the script's path kept where
    the queue shows it, on LSF and HTCondor; the others keep it themselves."""
    if kind == "lsf":
        return [*command, "-Jd", script]
    if kind == "htcondor" and not set(script) & set('"\\'):  # a plain ClassAd string
        return [*command, "-append", f'+{HTCONDOR_MARK} = "{script}"']
    return command


def as_submitted(kind: str, job_id: str) -> str:
    """``job_id`` (as ``jobs_of`` gives it) as the submit command prints it, for
    dask-jobqueue's pattern: condor_submit's "submitted to cluster N" (id N.0)."""
    if kind == "htcondor":
        return f"1 job(s) submitted to cluster {job_id.partition('.')[0]}."
    return job_id


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
        if kind == "lsf":
            return await _lsf(call, scripts)
        if kind == "htcondor":
            where = f"{HTCONDOR_MARK} =!= undefined"
            fields = [HTCONDOR_MARK, "ClusterId", "ProcId"]
            out = await call(["condor_q", "-constraint", where, "-af", *fields], QUERY_TIMEOUT)
            rows = [line.rsplit(None, 2) for line in out.splitlines()]
            return {r[0]: f"{r[1]}.{r[2]}" for r in rows if len(r) == 3 and r[0] in scripts}
    except (OSError, RuntimeError):
        return None
    return {}


async def _lsf(call: Call, scripts: set[str]) -> dict[str, str]:
    """``bjobs -o``: "ID|DESCRIPTION" a line ("-" for a job without one)."""
    fields = "jobid job_description delimiter='|'"
    command = ["bjobs", "-u", getpass.getuser(), "-noheader", "-o", fields]
    try:
        out = await call(command, QUERY_TIMEOUT)
    except RuntimeError as exc:  # no job of the user's at all: not a failure
        if any(words in str(exc).lower() for words in LSF_NONE):
            return {}
        raise
    pairs = [line.strip().partition("|")[::2] for line in out.splitlines()]
    return {text: job for job, text in pairs if text in scripts}


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
