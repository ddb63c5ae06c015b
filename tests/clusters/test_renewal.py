"""Batch jobs renewed before they retire: lifetimes spread over a cohort, the replacement
asked for ahead of each retirement (``supervisor.clusters.renewal``), and the same on a
real dask-jobqueue Slurm cluster whose sbatch/scancel run jobs as local processes."""

from __future__ import annotations

import itertools
import os
import re
import stat
import time
from pathlib import Path

import pytest

from supervisor.clusters import adaptive, gpu_pin, renewal
from supervisor.clusters.jobqueue import make_jobqueue
from supervisor.clusters.profile import load
from supervisor.clusters.renewal import Renewal, cohort_spread
from supervisor.execution import provenance


def test_a_cohort_retires_spread_evenly_never_together() -> None:
    r = Renewal(100.0, 20.0)
    lifetimes = sorted(r.new_job(f"j{i}", 0.0) or 0.0 for i in range(8))
    assert lifetimes[-1] == 100.0 and lifetimes[0] >= 80.0
    gaps = [b - a for a, b in itertools.pairwise(lifetimes)]
    assert min(gaps) > 20.0 / 8 / 3  # golden-ratio steps: no two jobs close together
    assert len(r.jobs) == 8


def test_the_spread_is_the_profile_window_widened() -> None:
    assert cohort_spread(1000.0, 50.0) == pytest.approx(200.0)  # 20 % of the longest
    assert cohort_spread(1000.0, 150.0) == pytest.approx(300.0)  # the profile's +- 150 s
    assert cohort_spread(100.0, 40.0) == pytest.approx(50.0)  # never half the lifetime


def test_a_job_is_renewed_its_wait_plus_a_trial_before_its_end() -> None:
    r = Renewal(100.0, 0.0)
    r.new_job("a", 0.0)
    assert r.observe({"a"}, 10.0) == []  # connected after a 10 s wait
    assert r.leaving(50.0) == 0
    lead = 10.0 * renewal.WAIT_FACTOR + renewal.MARGIN
    assert r.lead() == pytest.approx(lead)
    assert r.leaving(110.0 - lead - 0.5) == 0
    assert r.leaving(110.0 - lead + 0.5) == 1  # its replacement is due now
    # The replacement gets the longest lifetime: it takes its predecessor's place.
    assert r.new_job("b", 110.0 - lead) == 100.0
    # Trials of 8 s: the placement stops feeding the job a trial's length before its end.
    for _ in range(5):
        r.trial_finished(8.0)
    assert r.lead() == pytest.approx(lead + 8.0 * 1.25)


def test_a_retired_job_is_forgotten_and_one_lost_early_is_not() -> None:
    r = Renewal(100.0, 0.0)
    r.new_job("old", 0.0)
    r.new_job("early", 0.0)
    r.observe({"old", "early"}, 5.0)
    assert r.observe({"old"}, 30.0) == []  # lost at 30 s of 100: Dask's own recovery
    assert r.jobs["early"].connected is None
    assert r.observe(set(), 105.0) == ["old"]  # at its lifetime: retired, forgotten
    assert "old" not in r.jobs and "early" in r.jobs


def test_renewal_never_starts_before_half_a_lifetime() -> None:
    r = Renewal(20.0, 0.0)
    r.new_job("a", 0.0)
    r.observe({"a"}, 30.0)  # a 30 s wait: the lead would exceed the lifetime
    assert r.leaving(35.0) == 0 and r.leaving(41.0) == 1


def test_replacements_not_asked_for_get_no_longest_lifetime() -> None:
    r = Renewal(100.0, 40.0)
    r.new_job("a", 0.0)
    r.observe({"a"}, 1.0)
    assert r.leaving(99.0) == 1
    r.replacements_unasked(0)  # enough jobs planned already (the workload shrank)
    assert (r.new_job("b", 99.0) or 0.0) < 100.0  # a spread lifetime, not the longest


def test_per_job_lifetimes_and_group_workers_map_to_their_job() -> None:
    assert renewal.lifetime_args(["--x"], 61.4) == ["--x", "--lifetime", "61s"]
    assert renewal.lifetime_args(["--x"], None) == ["--x"]
    groups = {"SLURMCluster-3-0": "SLURMCluster-3", "SLURMCluster-3-1": "SLURMCluster-3"}
    assert adaptive.job_of("SLURMCluster-3-1", groups) == "SLURMCluster-3"
    assert adaptive.job_of("SLURMCluster-4", groups) == "SLURMCluster-4"


def test_gpu_job_variables_match_what_provenance_reads() -> None:
    assert provenance.GPUS_ENV == gpu_pin.GPUS_ENV
    assert provenance.TRIALS_PER_GPU_ENV == gpu_pin.TRIALS_PER_GPU_ENV


# -- a Slurm cluster whose jobs are local processes -----------------------------------------

SBATCH = """#!/bin/bash
# The job script is deleted once sbatch returns: keep a copy, run it in its own session.
copy="$FAKE_SLURM/job-$RANDOM$RANDOM.sh"
cp "${@: -1}" "$copy"
setsid bash -c "sleep $FAKE_SLURM_WAIT; exec bash $copy" > "$copy.log" 2>&1 < /dev/null &
echo "Submitted batch job $!"
"""
SCANCEL = """#!/bin/bash
kill -TERM -- "-$1" 2>/dev/null || true
"""


def fake_slurm(folder: Path, monkeypatch: pytest.MonkeyPatch, wait: float) -> None:
    folder.mkdir()
    for name, text in (("sbatch", SBATCH), ("scancel", SCANCEL)):
        path = folder / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(folder))
    monkeypatch.setenv("FAKE_SLURM_WAIT", str(wait))


def test_slurm_jobs_are_replaced_before_they_retire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two jobs of one worker, 33-41 s lifetimes, 1 s in the queue: replacements connect
    while the jobs they replace still run, so two workers are there at every moment, and
    no retired job is submitted again. The lead's margin is 15 s here (5 s in a campaign,
    whose waits are minutes): with two test processes on 2 cores a worker may take ~12 s
    to start, more than its first jobs' waits foretell."""
    monkeypatch.setattr(renewal, "MARGIN", 15.0)
    fake_slurm(tmp_path / "slurm", monkeypatch, wait=1.0)
    path = tmp_path / "p.yaml"
    path.write_text(
        "kind: slurm\ncores: 1\nmemory: 1GiB\nprocesses: 1\nmin_jobs: 2\nmax_jobs: 2\n"
        "lifetime: 40s\nlifetime_stagger: 1s\ntls: false\n"
    )
    launcher = load(str(path))
    handle = make_jobqueue(launcher, tmp_path / "run", "renew", "127.0.0.1:0")
    try:
        seen: list[tuple[float, set[str]]] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            workers = handle.client.scheduler_info(n_workers=-1)["workers"].values()
            seen.append((time.monotonic(), {str(w["name"]) for w in workers}))
            if len(set().union(*(names for _, names in seen))) >= 4:
                break  # both first jobs were replaced
            time.sleep(0.1)
    finally:
        handle.client.close()
        handle.cluster.close()
    names = set().union(*(n for _, n in seen))
    assert len(names) >= 4, seen[-1]
    first_full = next(i for i, (_, n) in enumerate(seen) if len(n) == 2)
    last_replacement = max(i for i, (_, n) in enumerate(seen) if n - set(seen[first_full][1]))
    counts = [len(n) for _, n in seen[first_full:last_replacement]]
    assert min(counts) >= 2, counts  # never fewer workers than asked for
    assert max(counts) >= 3  # the overlap: a replacement before its predecessor left
    scripts = [p.read_text() for p in sorted((tmp_path / "slurm").glob("job-*.sh"))]
    submitted = [re.search(r"--name (\S+)", text).group(1) for text in scripts]  # type: ignore[union-attr]
    assert len(submitted) == len(set(submitted)) >= 4  # no retired job submitted again
    lifetimes = {int(m) for text in scripts for m in re.findall(r"--lifetime (\d+)s", text)}
    assert lifetimes <= set(range(32, 42)) and len(lifetimes) >= 2  # its own, per job
