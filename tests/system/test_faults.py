"""Fault injection: processes killed with SIGKILL, trials over their limits, hostile input.

Nothing may be lost and nothing counted twice: every campaign here ends with exactly the
requested number of finished trials, every infrastructure failure is recorded as such and
its parameters run again, and a trial that merely shared a worker with a crash is never
blamed. The suite prints a table of what it injected (tests/faultkit.py, conftest.py).

Already covered elsewhere and not repeated: the whole campaign killed and resumed
(test_cli.py), a trial killed on its time or memory limit inside its trial process
(test_trial_host.py), a trial that kills its own worker being blamed after 3 attempts
(test_driver.py), hostile text in synthetic studies (test_report.py, test_browser.py), TLS
certificates of batch clusters (test_tls.py).
"""

from __future__ import annotations

import os
import random
import re
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from distributed import Client, LocalCluster
from optuna.trial import TrialState

from supervisor.clusters.handle import configure_dask
from supervisor.clusters.launch import open_cluster
from supervisor.clusters.profile import load as load_launcher
from supervisor.config import space
from supervisor.study import attrs
from supervisor.study.driver import Driver
from supervisor.study.storage import load_study, open_storage
from tests import faultkit
from tests.faultkit import Tally, original, run_search, start_search, toy_space, wait_for

pytestmark = pytest.mark.faults


def children(pid: int) -> list[int]:
    """Child processes of ``pid``, started by any of its threads (Dask runs tasks in a pool)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def session_pids(sid: int) -> set[int]:
    """Every live process of a session (a campaign started with start_new_session)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[3]) == sid:  # after pid (comm): state ppid pgrp session
                pids.add(int(entry.name))
    return pids


def sleeping_in_a_trial(pid: int) -> bool:
    """True while the process sleeps in the toy model's epoch (clock_nanosleep): it is
    mid-trial, not waiting for its next trial (read) nor sending a result (write)."""
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split()[0] == "230"
    except (OSError, IndexError):
        return False


def executing_keys(dask_worker: Any) -> list[str]:
    return [str(ts.key) for ts in dask_worker.state.executing]


class TrialKiller(threading.Thread):
    """kill -9 the process running a trial for about one trial in ``every``.

    Only first attempts are hit (their re-runs are left alone) so that a configuration is
    never blamed for three deaths that were all ours. One kill in ``worker_every`` takes
    the Dask worker process itself (its nanny starts a new one); the others take the
    worker's trial process.
    """

    def __init__(self, client: Client, url: str, study: str, every: int, worker_every: int):
        super().__init__(daemon=True)
        self.client, self.url, self.study_name = client, url, study
        self.every, self.worker_every = every, worker_every
        self.kills: list[tuple[int, str]] = []  # (trial number, "trial process" | "worker")
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.done.wait(0.05):
                self.step()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def step(self) -> None:
        study = load_study(self.url, self.study_name)
        trials = study.get_trials(deepcopy=False)
        if (
            len(self.kills)
            >= (sum(attrs.counts_toward_budget(t) for t in trials) + 5) // self.every
        ):
            return
        try:
            running = self.client.run(executing_keys)
            pids = self.client.run(os.getpid)
        except Exception:  # a worker is restarting: try again next turn
            return
        candidates = [
            (address, int(key.split("-")[1]))
            for address, keys in running.items()
            for key in keys
            if address in pids
        ]
        random.shuffle(candidates)
        for address, number in candidates:
            if number >= len(trials) or attrs.ATTEMPT in trials[number].user_attrs:
                continue  # a re-run: leave it alone
            worker = pids[address]
            busy = [pid for pid in children(worker) if sleeping_in_a_trial(pid)]
            if not busy:
                continue
            whole_worker = len(self.kills) % self.worker_every == self.worker_every - 1
            os.kill(worker if whole_worker else busy[0], signal.SIGKILL)
            self.kills.append((number, "worker" if whole_worker else "trial process"))
            return


def test_workers_killed_mid_trial_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    """kill -9 in about 10% of 200 trials: exactly 200 complete, each kill re-run once."""
    budget = 200
    exp = space.load(toy_space(tmp_path, budget, delay=0.02, epochs=3))
    url = f"journal:{tmp_path / 'journal.log'}"
    study = optuna.create_study(
        study_name=exp.study_name,
        storage=open_storage(url),
        directions=exp.directions,
        sampler=optuna.samplers.RandomSampler(seed=1),
    )
    with open_cluster(
        workers=2, threads=1, scheduler=None, dashboard="127.0.0.1:0", run_dir=tmp_path
    ) as handle:
        killer = TrialKiller(handle.client, url, exp.study_name, every=10, worker_every=8)
        killer.start()
        try:
            summary = Driver(exp, study, handle.client, slots=handle.slots).run()
        finally:
            killer.done.set()
            killer.join(timeout=30)
    assert killer.error is None, repr(killer.error)

    trials = study.get_trials()
    tally = Tally.of(study)
    infra = [t for t in trials if t.user_attrs.get(attrs.FAILURE) == "infrastructure"]
    faultkit.record(
        "kill -9 worker/trial process mid-trial (200 trials)",
        len(infra),
        tally.lost,
        tally.duplicated,
        summary.finished == budget,
    )
    assert summary.finished == budget and tally.complete == budget, tally.states
    assert tally.lost == 0 and tally.duplicated == 0
    assert set(tally.states) <= {"COMPLETE", "FAIL:infrastructure"}, "innocent casualties"
    # About 10% of 200. A kill can land as a trial sends its result, then it hits nothing;
    # a killed worker also fails the trial queued on it.
    assert len(killer.kills) >= 15 and len(infra) >= max(15, 0.8 * len(killer.kills))
    complete = {original(t): t for t in trials if t.state == TrialState.COMPLETE}
    for t in infra:
        assert t.user_attrs["error_type"] and t.user_attrs["error"]
        rerun = complete[original(t)]  # run again with the same parameters, and completed
        assert rerun.number > t.number and rerun.params == t.params


def test_the_driver_killed_twice_resumes_with_exact_counts(tmp_path: Path) -> None:
    """kill -9 the driver process alone (its workers live on as orphans), twice."""
    budget = 20
    space_file = toy_space(tmp_path, budget, delay=0.12, epochs=2)
    url = faultkit.journal_url(space_file)
    zombies_closed = 0
    for stop_at in (3, 9):
        proc = start_search(space_file, "--workers", "2")
        try:
            wait_for(url, "toy", lambda s, n=stop_at: faultkit.finished(s) >= n)  # type: ignore[misc]
            os.kill(proc.pid, signal.SIGKILL)  # the driver only
            proc.wait(timeout=30)
            study = load_study(url, "toy")
            running = [t.number for t in study.get_trials(states=(TrialState.RUNNING,))]
            assert running and faultkit.finished(study) < budget, "killed mid-campaign"
            zombies_closed += len(running)
        finally:
            faultkit.kill_session(proc)  # the orphaned cluster, which the test started
    result = run_search(space_file, "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr

    study = load_study(url, "toy")
    tally = Tally.of(study)
    faultkit.record(
        "kill -9 driver alone, twice, then rerun", 2, tally.lost, tally.duplicated, True
    )
    assert tally.complete == budget and tally.states["RUNNING"] == 0
    assert tally.lost == 0 and tally.duplicated == 0
    assert tally.states["FAIL:infrastructure"] == zombies_closed
    lost = [t for t in study.trials if t.user_attrs.get("error_type") == "DriverLost"]
    assert len(lost) == zombies_closed


def test_a_trial_over_its_time_limit_is_stopped_and_its_slot_reused(tmp_path: Path) -> None:
    params = "  x: {type: float, low: -4, high: 4}\n  mode: [ok, sleep]\n  seconds: [60]\n"
    path = toy_space(tmp_path, 8, delay=0.05, params=params)
    path.write_text(path.read_text().replace("epochs: 2}", "epochs: 1, trial_timeout: 2}"))
    started = time.monotonic()
    result = run_search(path, "--workers", "2", timeout=120)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 60, "the 60 s trials were stopped at 2 s"
    study = load_study(faultkit.journal_url(path), "toy")
    slow = [t for t in study.trials if t.params["mode"] == "sleep"]
    assert slow and all(t.user_attrs["error_type"] == "TimeLimitExceeded" for t in slow)
    assert faultkit.finished(study) == 8


def test_model_failures_are_recorded_with_their_cause_and_nobody_else_fails(
    tmp_path: Path,
) -> None:
    """Exceptions, NaN, +inf, -inf and a trial over the worker's memory limit, on worker
    processes: each is the trial's own failure with its cause; the ok trials all finish."""
    budget = 24
    params = (
        "  x: {type: float, low: -4, high: 4}\n"
        "  mode: [ok, raise, nan, inf, neginf, hog]\n"
        "  mb: [900]\n  seconds: [20]\n"
    )
    exp = space.load(toy_space(tmp_path, budget, delay=0.02, epochs=1, params=params))
    study = optuna.create_study(
        study_name=exp.study_name,
        directions=exp.directions,
        sampler=optuna.samplers.RandomSampler(seed=7),
    )
    configure_dask()
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit="600MiB",  # the trial process may use this much; the hog takes 900
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        summary = Driver(exp, study, client, slots=2).run()

    causes = {
        "raise": "RuntimeError",
        "nan": "NonFiniteObjective",
        "inf": "NonFiniteObjective",
        "neginf": "NonFiniteObjective",
        "hog": "MemoryLimitExceeded",
    }
    seen: set[str] = set()
    for t in study.trials:
        mode = t.params["mode"]
        if mode == "ok":
            assert t.state == TrialState.COMPLETE, t.user_attrs  # innocent casualties: 0
            continue
        seen.add(mode)
        assert t.state == TrialState.FAIL and t.user_attrs[attrs.FAILURE] == "model"
        assert t.user_attrs["error_type"] == causes[mode], t.user_attrs
    assert seen == set(causes), "the sampler drew every failure mode"
    assert summary.finished == budget
    tally = Tally.of(study)
    faultkit.record(
        "trial raises / NaN / +-inf / over memory", len(study.trials) - tally.complete, 0, 0, True
    )


# -- security ---------------------------------------------------------------------------

HOSTILE = "</script><img src=x onerror=alert(1)>"


def listening(pids: set[int]) -> list[str]:
    """Local addresses of the TCP sockets these processes listen on (ss -ltnp)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            found.append(line.split()[3])
    return found


def test_a_local_campaign_listens_on_loopback_and_its_reports_show_hostile_text(
    tmp_path: Path,
) -> None:
    """While a default local campaign runs, every socket of its processes listens on
    loopback; names it stores that carry HTML and script come out as text in every report."""
    params = f'  x: {{type: float, low: -4, high: 4}}\n  tag: ["{HOSTILE}", plain]\n'
    path = toy_space(tmp_path, 14, delay=0.25, epochs=2, params=params)
    text = path.read_text().replace("objectives: [loss]", "objectives: [loss, score]")
    path.write_text(text + f'description: "{HOSTILE}"\n')
    args = faultkit.search_args(path, "--workers", "2")
    args = [a for a in args if a not in ("--no-report", "--dashboard", "127.0.0.1:0")]
    proc = subprocess.Popen(
        args,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    addresses: set[str] = set()
    try:
        while proc.poll() is None:
            addresses.update(listening(session_pids(proc.pid)))
            time.sleep(0.3)
        output = proc.communicate(timeout=30)[0]
    finally:
        faultkit.kill_session(proc)
    assert proc.returncode == 0, output
    # The scheduler, its dashboard, and each worker and nanny listen somewhere.
    assert len(addresses) >= 4, addresses
    public = [a for a in addresses if not a.startswith(("127.", "[::1]:"))]
    assert public == [], f"listening beyond loopback: {public}"

    reports = sorted((tmp_path / "reports").glob("*.html"))
    assert len(reports) >= 2, "a search report and a Pareto report"  # two objectives
    for report in reports:
        html = report.read_text(encoding="utf-8")
        assert "<img src=x onerror=" not in html and "</script><img" not in html, report
        assert html.count("</script>") == len(re.findall(r"<script[ >]", html)), report
    search_html = (tmp_path / "reports" / "toy.html").read_text(encoding="utf-8")
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in search_html


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0)  # the most permissive a user could have
    try:
        yield
    finally:
        os.umask(previous)


def test_tls_key_files_stay_private_under_a_permissive_umask(
    tmp_path: Path, loose_umask: None
) -> None:
    """The scheduler a batch campaign starts writes its certificate for the workers:
    0600 files in a 0700 directory, even when the user's umask would share them."""
    with open_cluster(
        workers=None,
        threads=None,
        scheduler=None,
        dashboard="127.0.0.1:0",
        launcher=load_launcher("slurm"),
        run_dir=tmp_path,
        study="tls",
    ) as handle:
        assert str(handle.cluster.scheduler_address).startswith("tls://")
        folder = tmp_path / "tls"
        files = sorted(folder.iterdir())
        assert files and any("key" in f.name for f in files)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        for f in files:
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    faultkit.record("TLS files under umask 000 (checked private)", 0, 0, 0, True)


# -- budget integrity: resumes, shared studies, signals, broken models -------------------


def test_five_kill_9_restarts_spend_the_budget_on_new_configurations(tmp_path: Path) -> None:
    """Each restart used to replay the first run's proposals (told as duplicates, counted,
    never trained): 40-50 % of the budget trained. The sampler now draws per trial number."""
    budget = 40
    space_file = toy_space(tmp_path, budget, delay=0.03, epochs=2)
    url = faultkit.journal_url(space_file)
    for stop_at in (4, 10, 16, 22, 28):
        proc = start_search(space_file, "--workers", "2")
        try:
            wait_for(url, "toy", lambda s, n=stop_at: faultkit.finished(s) >= n)  # type: ignore[misc]
        finally:
            faultkit.kill_session(proc)
        assert faultkit.finished(load_study(url, "toy")) < budget, "killed mid-campaign"
    result = run_search(space_file, "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    study = load_study(url, "toy")
    tally = Tally.of(study)
    ratio = faultkit.distinct_trained(study) / budget
    faultkit.record(
        f"kill -9 campaign 5 times: {ratio:.0%} distinct trained",
        5,
        tally.lost,
        tally.duplicated,
        faultkit.finished(study) == budget,
    )
    assert faultkit.finished(study) == budget and tally.lost == 0
    assert ratio >= 0.95, f"{ratio:.0%} of the budget trained distinct configurations"


def test_three_drivers_on_one_study_train_distinct_configurations(tmp_path: Path) -> None:
    """Three drivers started together on one study (each with its own cluster): before,
    each proposed the same points and a third of the work was new."""
    budget = 36
    space_file = toy_space(tmp_path, budget, delay=0.05, epochs=2)
    url = faultkit.journal_url(space_file)
    procs = [start_search(space_file, "--workers", "1") for _ in range(3)]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)
    assert all(f"Finished trials: {budget} of {budget}" in out for out in outputs), outputs
    study = load_study(url, "toy")
    tally = Tally.of(study)
    ratio = faultkit.distinct_trained(study) / budget
    faultkit.record(
        f"3 drivers on one study: {ratio:.0%} distinct trained",
        0,
        tally.lost,
        tally.duplicated,
        faultkit.finished(study) == budget,
    )
    assert faultkit.finished(study) == budget and tally.lost == 0 and tally.duplicated == 0
    assert len({t.user_attrs[attrs.DRIVER] for t in study.trials}) == 3
    assert ratio >= 0.95, f"{ratio:.0%} of the budget trained distinct configurations"


def test_sigterm_then_an_immediate_rerun_finishes_the_exact_budget(tmp_path: Path) -> None:
    """SIGTERM (Slurm's walltime, scancel, requeue) to the driver: it stops submitting,
    records its running trials as interrupted and queues them again, prints its summary
    and exits non-zero; the rerun started at once finishes exactly the budget."""
    budget = 24
    space_file = toy_space(tmp_path, budget, delay=0.2, epochs=2)
    url = faultkit.journal_url(space_file)
    proc = start_search(space_file, "--workers", "2")
    try:
        wait_for(url, "toy", lambda s: faultkit.finished(s) >= 6)
        os.kill(proc.pid, signal.SIGTERM)  # the driver only, as `kill` or Slurm's step
        output = proc.communicate(timeout=60)[0]
    finally:
        faultkit.kill_session(proc)
    assert proc.returncode == 143, output
    assert "Stopped: SIGTERM received" in output and "budget reached" not in output
    study = load_study(url, "toy")
    interrupted = [t for t in study.trials if t.user_attrs.get(attrs.FAILURE) == "interrupted"]
    assert not study.get_trials(states=(TrialState.RUNNING,)), "nothing left for a takeover"
    assert len(study.get_trials(states=(TrialState.WAITING,))) == len(interrupted) > 0
    assert faultkit.finished(study) < budget

    result = run_search(space_file, "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Finished trials: {budget} of {budget} requested" in result.stdout
    tally = Tally.of(load_study(url, "toy"))
    faultkit.record("SIGTERM to the driver, rerun at once", 1, tally.lost, tally.duplicated, True)
    assert tally.complete == budget and tally.lost == 0 and tally.duplicated == 0


def test_a_model_that_always_raises_stops_a_100_trial_campaign_within_five_trials(
    tmp_path: Path,
) -> None:
    params = "  x: {type: float, low: -4, high: 4}\n  mode: [raise]\n"
    space_file = toy_space(tmp_path, 100, delay=0.02, epochs=1, params=params)
    result = run_search(space_file, "--workers", "2", timeout=120)
    error = "RuntimeError: model exploded on purpose"
    assert f"Error: the first 5 trials all failed with {error}" in result.stdout, result.stdout
    assert result.stdout.count(f"with {error}") == 1, "the error is shown once"
    study = load_study(faultkit.journal_url(space_file), "toy")
    tally = Tally.of(study)
    queued = len(study.get_trials(states=(TrialState.WAITING,)))  # for the rerun after a fix
    assert 5 <= tally.states["FAIL:model"] <= 5 + 4 and tally.states["RUNNING"] == 0
    assert tally.states["FAIL:interrupted"] == queued
    faultkit.record("a model that always raises", 1, tally.lost - queued, 0, "stopped")


def test_the_search_command_exits_1_when_the_model_fails_fast(tmp_path: Path) -> None:
    params = "  x: {type: float, low: -4, high: 4}\n  mode: [raise]\n"
    space_file = toy_space(tmp_path, 30, delay=0.02, epochs=1, params=params)
    assert run_search(space_file, "--workers", "1", timeout=120).returncode == 1
