"""A submit command that does not answer: killed after ``submit_timeout``, its job asked
again, and a job it made all the same adopted or cancelled, never left running uncounted.

The batch system is a fake ``sbatch`` on PATH that hangs (a controller that does not
answer), with a fake ``squeue`` that lists the jobs it recorded (id and script, as
``squeue -o "%i %o"``) and a fake ``scancel`` that records what it cancels.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from supervisor.clusters import submissions, unanswered
from supervisor.clusters.jobqueue import make_jobqueue
from supervisor.clusters.profile import load
from tests.clusters.test_submissions import fake_queue

SQUEUE = '#!/bin/bash\ncat "$FAKE_QUEUE/queue" 2>/dev/null\n'
SCANCEL = '#!/bin/bash\necho "$*" >> "$FAKE_QUEUE/cancelled"\n'
# Hangs on every submission, taking nothing (the second one's child too).
HANGS = """#!/bin/bash
echo "$*" >> "$FAKE_QUEUE/calls"
sleep 1000 &
wait
"""
# Takes the job (the queue shows it), then never answers.
TAKES_THEN_HANGS = """#!/bin/bash
echo "$*" >> "$FAKE_QUEUE/calls"
echo "7001 $1" >> "$FAKE_QUEUE/queue"
sleep 1000
"""
# The first submission hangs and its job shows up in the queue only later; the next ones
# are answered at once.
LATE_THEN_ANSWERS = """#!/bin/bash
echo "$*" >> "$FAKE_QUEUE/calls"
n=$(wc -l < "$FAKE_QUEUE/calls")
if [ "$n" -eq 1 ]; then
  setsid bash -c "sleep 5; echo '7001 $1' >> '$FAKE_QUEUE/queue'" </dev/null >&0 2>&0 &
  sleep 1000
fi
echo "700$n $1" >> "$FAKE_QUEUE/queue"
echo "Submitted batch job 700$n"
"""


def lines(folder: Path, name: str) -> list[str]:
    path = folder / name
    return path.read_text().splitlines() if path.exists() else []


def start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sbatch: str, extra: str = "") -> tuple:
    queue = tmp_path / "slurm"
    fake_queue(queue, monkeypatch, "sbatch", sbatch)
    for name, text in (("squeue", SQUEUE), ("scancel", SCANCEL)):
        (queue / name).write_text(text)
        (queue / name).chmod(0o755)
    path = tmp_path / "s.yaml"
    path.write_text(
        "kind: slurm\ncores: 1\nmemory: 1GiB\nmin_jobs: 1\nmax_jobs: 1\ntls: false\n"
        f"submit_timeout: 2\n{extra}"
    )
    handle = make_jobqueue(load(str(path)), tmp_path / "run", "hung", "127.0.0.1:0")
    return queue, path, handle


def test_a_hanging_sbatch_is_killed_and_its_job_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver waited forever: no job was asked again, nothing was said, and the
    cluster's close (the campaign's end) never returned."""
    monkeypatch.setattr(submissions, "RETRY_FIRST", 1.0)
    queue, path, handle = start(tmp_path, monkeypatch, HANGS)
    said: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while len(lines(queue, "calls")) < 2 and time.monotonic() < deadline:
            assert handle.watch(said.append) is None
            time.sleep(0.2)
        time.sleep(1.1)
        assert handle.watch(said.append) is None
    finally:
        started = time.monotonic()
        handle.client.close()
        handle.cluster.close()
    assert time.monotonic() - started < 15  # the second, hanging one killed too
    assert len(lines(queue, "calls")) >= 2
    assert said[0] == (
        f"{path}: sbatch refused a worker job: sbatch gave no answer in 2 s (timed out;"
        " killed) (an error of the batch system that passes); asked again in 1 s"
    )


def assert_adopted(handle: Any, queue: Path) -> None:
    """The job a hung submit command made is the cluster's one worker job (7001), not
    submitted again, and the cluster's close cancels it."""
    try:
        deadline = time.monotonic() + 30
        while not handle.cluster.submissions.accepted and time.monotonic() < deadline:
            assert handle.watch(print) is None
            time.sleep(0.2)
        time.sleep(1.0)
        (job,) = handle.cluster.workers.values()
        assert job.job_id == "7001"
    finally:
        handle.client.close()
        handle.cluster.close()
    assert len(lines(queue, "calls")) == 1
    assert lines(queue, "cancelled") == ["7001"]


def test_a_job_taken_by_an_sbatch_that_then_hung_is_adopted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not submitted again beside the first (two jobs, one counted): the queue's job
    of that submission's script is the job's, and the cluster's close cancels it."""
    queue, _, handle = start(tmp_path, monkeypatch, TAKES_THEN_HANGS)
    assert_adopted(handle, queue)


def test_a_job_that_shows_up_after_its_sbatch_timed_out_is_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its place was asked for again (job 7002): the late one would have held a node
    with a worker nobody counts."""
    monkeypatch.setattr(submissions, "RETRY_FIRST", 0.5)
    monkeypatch.setattr(unanswered, "SWEEP_EVERY", 0.5)
    queue, path, handle = start(tmp_path, monkeypatch, LATE_THEN_ANSWERS)
    said: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while not lines(queue, "cancelled") and time.monotonic() < deadline:
            assert handle.watch(said.append) is None
            time.sleep(0.2)
        time.sleep(1.1)
        assert handle.watch(said.append) is None
        (job,) = handle.cluster.workers.values()
        assert job.job_id == "7002"
    finally:
        handle.client.close()
        handle.cluster.close()
    assert lines(queue, "cancelled") == ["7001", "7002"]  # the stray, then at close
    assert (
        f"{path}: sbatch took job 7001 after it timed out, once the job had been asked for"
        " again: cancelled (nobody counts it)"
    ) in said


def test_submit_timeout_is_checked_as_a_duration(tmp_path: Path) -> None:
    from supervisor.errors import UserError

    path = tmp_path / "s.yaml"
    path.write_text("kind: slurm\ncores: 1\nmemory: 1GiB\nsubmit_timeout: -5\n")
    with pytest.raises(UserError, match=r"submit_timeout: expected a positive duration"):
        load(str(path))
    path.write_text("kind: slurm\ncores: 1\nmemory: 1GiB\nsubmit_timeout: 2m\n")
    assert load(str(path)).extra == {"submit_timeout": 120.0}


# The queries of PBS and Grid Engine, as the fake queue's jobs ("ID SCRIPT" lines) would
# print them. PBS Pro's `qstat -f` (Torque's names the key submit_args) wraps a value at 80
# columns into lines that start with a tab; Grid Engine's `qstat -u USER` is a table whose
# job ids come after 2 header lines, and `qstat -j IDS` a block of "key: value" lines
# after a line of '=' per job. Formats from the PBS Professional and Grid Engine manuals
# (qstat(1B), qstat(1)): no real PBS or Grid Engine runs here.
PBS_QSTAT = r"""#!/bin/bash
[ "$1" = -f ] || exit 2
while read -r id script; do
  printf 'Job Id: %s.pbs-server\n    Job_Name = sv-hung\n' "$id"
  printf '    Job_Owner = %s@login1\n    job_state = Q\n    queue = workq\n' "$USER"
  printf '    Variable_List = PBS_O_HOME=/home/u,PBS_O_LANG=C.UTF-8,PBS_O_LOGNAME=u,\n'
  printf '\tPBS_O_PATH=/usr/bin:/bin,PBS_O_SHELL=/bin/bash,PBS_O_WORKDIR=/home/u\n'
  printf '    %s = %s\n\t%s\n' "$KEY" "${script:0:20}" "${script:20}"
  printf '    project = _pbs_project_default\n\n'
done < "$FAKE_QUEUE/queue"
"""
SGE_QSTAT = r"""#!/bin/bash
if [ "$1" = -u ]; then
  printf 'job-ID  prior   name       user         state submit/start at     queue    slots\n'
  printf -- '-------------------------------------------------------------------------------\n'
  while read -r id script; do
    printf '%7s 0.00000 sv-hung    %-12s qw    12/07/2026 07:30:00              1\n' "$id" u
  done < "$FAKE_QUEUE/queue"
  exit 0
fi
while read -r id script; do
  printf '==============================================================\n'
  printf 'job_number:                 %s\nexec_file:                  job_scripts/%s\n' "$id" "$id"
  printf 'submission_time:            Mon Dec  7 07:30:00 2026\nowner:                      u\n'
  printf 'job_name:                   sv-hung\nscript_file:                %s\n' "$script"
  printf 'scheduling info:            (Collecting of scheduler job information is turned off)\n'
done < "$FAKE_QUEUE/queue"
"""
QDEL = '#!/bin/bash\necho "$*" >> "$FAKE_QUEUE/cancelled"\n'
# qsub: takes the job (the queue shows it), then never answers; the next ones answer.
QSUB_TAKES_THEN_HANGS = """#!/bin/bash
echo "$*" >> "$FAKE_QUEUE/calls"
n=$(wc -l < "$FAKE_QUEUE/calls")
echo "700$n $1" >> "$FAKE_QUEUE/queue"
[ "$n" -eq 1 ] && sleep 1000
echo "700$n.pbs-server"
"""


@pytest.mark.parametrize(
    ("kind", "qstat", "key"),
    [("pbs", PBS_QSTAT, "Submit_arguments"), ("pbs", PBS_QSTAT, "submit_args"),
     ("sge", SGE_QSTAT, "")],
)  # fmt: skip
def test_a_job_taken_by_a_qsub_that_then_hung_is_adopted_on_pbs_and_grid_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, qstat: str, key: str
) -> None:
    """Only Slurm's queue was asked: on PBS (Pro and Torque) and Grid Engine the job a
    timed-out qsub made was submitted again beside it, and ran a worker nobody counted
    for as long as the campaign."""
    queue = tmp_path / kind
    fake_queue(queue, monkeypatch, "qsub", QSUB_TAKES_THEN_HANGS)
    for name, text in (("qstat", qstat), ("qdel", QDEL)):
        (queue / name).write_text(text)
        (queue / name).chmod(0o755)
    monkeypatch.setenv("KEY", key)
    path = tmp_path / "q.yaml"
    path.write_text(
        f"kind: {kind}\ncores: 1\nmemory: 1GiB\nmin_jobs: 1\nmax_jobs: 1\ntls: false\n"
        "submit_timeout: 2\n"
    )
    handle = make_jobqueue(load(str(path)), tmp_path / "run", "hung", "127.0.0.1:0")
    assert_adopted(handle, queue)


# LSF (`bsub < FILE`) and HTCondor (a submit description) keep no script path: the
# submission carries it, in LSF's job description (`bsub -Jd`) or an HTCondor job
# attribute (`condor_submit -append`). The fake submit commands take the job (the queue
# shows it, with the path as given), then never answer; the queries print as bjobs(1)'s
# `-o ... delimiter=` and condor_q(1)'s `-af` do, beside a job of the user's own.
BSUB_TAKES_THEN_HANGS = """#!/bin/bash
echo "$*" >> "$FAKE_QUEUE/calls"
[ "$1" = -Jd ] && echo "7001 $2" >> "$FAKE_QUEUE/queue"
cat > /dev/null
sleep 1000
"""
BJOBS = r"""#!/bin/bash
[ "$1 $3 $4 $5" = "-u -noheader -o jobid job_description delimiter='|'" ] || exit 2
if [ ! -s "$FAKE_QUEUE/queue" ]; then echo "No unfinished job found" >&2; exit 255; fi
echo "6999|-"
while read -r id text; do echo "$id|$text"; done < "$FAKE_QUEUE/queue"
"""
CONDOR_SUBMIT_TAKES_THEN_HANGS = """#!/bin/bash
echo "$*" >> "$FAKE_QUEUE/calls"
[ "$1" = -append ] && echo "7001 $2" | sed 's/+SupervisorScript = "\\(.*\\)"/\\1/' \
  >> "$FAKE_QUEUE/queue"
sleep 1000
"""
CONDOR_Q = r"""#!/bin/bash
[ "$*" = "-constraint SupervisorScript =!= undefined -af SupervisorScript ClusterId ProcId" ] \
  || exit 2
while read -r id text; do echo "$text $id 0"; done < "$FAKE_QUEUE/queue"
"""


@pytest.mark.parametrize(
    ("kind", "submit", "query", "found"),
    [("lsf", BSUB_TAKES_THEN_HANGS, BJOBS, "7001"),
     ("htcondor", CONDOR_SUBMIT_TAKES_THEN_HANGS, CONDOR_Q, "7001.0")],
)  # fmt: skip
def test_a_job_taken_by_a_bsub_or_condor_submit_that_then_hung_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, submit: str, query: str,
    found: str,
) -> None:  # fmt: skip
    """Only Slurm, PBS and Grid Engine were looked up: on LSF and HTCondor the job a
    timed-out submission made was asked again beside it and ran a worker nobody counted;
    one that showed up late was never cancelled."""
    import asyncio

    from supervisor.clusters import job_lookup
    from supervisor.clusters.jobqueue import job_class, submit_command

    queue = tmp_path / kind
    command = submit_command(kind)
    fake_queue(queue, monkeypatch, command, submit)
    query_name = "bjobs" if kind == "lsf" else "condor_q"
    (queue / query_name).write_text(query)
    (queue / query_name).chmod(0o755)
    cancel = "bkill" if kind == "lsf" else "condor_rm"
    (queue / cancel).write_text(QDEL)
    (queue / "queue").touch()
    subs = submissions.Submissions(command, 0.5, kind)
    extra = {"disk": "1GB"} if kind == "htcondor" else {}
    job = submissions.watched(job_class(kind), subs)(
        scheduler="tcp://127.0.0.1:1", name="0", cores=1, memory="1GiB", **extra
    )
    # No job of the user's at all: an answer (none found), not a batch system away.
    assert asyncio.run(job_lookup.jobs_of(kind, {"/x.sh"}, unanswered.call)) == {}
    asyncio.run(job.start())
    assert job.job_id == found  # the job the hung submission made: not asked again
    assert len(lines(queue, "calls")) == 1
    # One that shows up only after its submission's timeout is cancelled.
    (late,) = {line.split(" ", 1)[1] for line in lines(queue, "queue")}
    (queue / "queue").write_text(f"7002 {late}\n")
    subs.strays.unsure[late] = time.time()
    asyncio.run(subs.strays.sweep([cancel], 5))
    assert lines(queue, "cancelled") == ["7002" if kind == "lsf" else "7002.0"]
