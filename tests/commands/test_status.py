"""``supervisor status`` (and ``report``) read a campaign from storage, also while a
driver in another process is writing it."""

from __future__ import annotations

import copy
import datetime as dt
import io
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from rich.console import Console

import supervisor.rundir as rundir
from supervisor.commands.status import print_status, read_status
from supervisor.study import attrs
from supervisor.study.storage import load_study

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000.0


def _study(budget: int = 30) -> optuna.Study:
    """10 trials finished one a minute (the last 5 s before NOW), 2 running, 1 failed."""
    study = optuna.create_study(study_name="live", direction="minimize")
    study.set_user_attr(attrs.CONFIG, {"budget": {"trials": budget, "epochs": 2}})
    study.set_user_attr(attrs.OBJECTIVES, ["loss"])
    x = FloatDistribution(0.0, 1.0)
    trials = []
    for i in range(10):
        end = NOW - 5 - 60 * (9 - i)
        t = create_trial(
            state=TrialState.COMPLETE,
            params={"x": i / 10},
            distributions={"x": x},
            value=abs(i - 6) / 10,
            user_attrs={"worker": f"tcp://10.0.0.{i % 2}:1", "duration_s": 100.0},
        )
        t.datetime_start = dt.datetime.fromtimestamp(end - 100)
        t.datetime_complete = dt.datetime.fromtimestamp(end)
        trials.append(t)
    failed = create_trial(
        state=TrialState.FAIL,
        params={"x": 0.5},
        distributions={"x": x},
        user_attrs={attrs.FAILURE: "infrastructure"},
    )
    failed.datetime_start = dt.datetime.fromtimestamp(NOW - 50)
    failed.datetime_complete = dt.datetime.fromtimestamp(NOW - 40)
    trials.append(failed)
    for i, (worker, started) in enumerate([("tcp://10.0.0.0:1", NOW - 30), (None, NOW - 90)]):
        t = create_trial(
            state=TrialState.RUNNING,
            params={"x": 0.2 + i / 10},
            distributions={"x": x},
            user_attrs={"worker": worker} if worker else {},
        )
        t.datetime_start = dt.datetime.fromtimestamp(started)
        trials.append(t)
    study.add_trials(trials)
    return study


def test_status_counts_best_running_and_eta() -> None:
    status = read_status(_study(), now=NOW)
    assert status.states == {"COMPLETE": 10, "FAIL": 1, "RUNNING": 2}
    assert status.failures == {"infrastructure": 1}
    assert status.requested == 30 and status.done == 10 and status.left == 20
    assert status.best_number == 6 and status.best_values == [0.0]
    assert status.best_params == {"x": 0.6}
    assert [(r.number, r.worker, r.elapsed) for r in status.running] == [
        (11, "tcp://10.0.0.0:1", 30.0),
        (12, "", 90.0),
    ]
    # 10 finishes since the first start (NOW - 5 - 540 - 100 s): 10 per 645 s.
    assert status.per_hour == pytest.approx(10 / 645 * 3600)
    assert status.eta == pytest.approx(20 * 64.5)
    assert status.last_finish_ago == pytest.approx(5.0)
    # What it cost: 10 trials of 100 s; no provenance, no node size: 1 core each.
    assert status.cost is not None and status.cost.unit == "core"
    assert status.cost.usage["complete"].core_seconds == pytest.approx(1000.0)


def test_throughput_is_recent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the last RECENT finishes count, over the time since the finish before them."""
    monkeypatch.setattr("supervisor.commands.status.RECENT", 4)
    status = read_status(_study(), now=NOW)
    # Finishes at NOW-5-60k; the one before the last 4 is at NOW - 245.
    assert status.per_hour == pytest.approx(4 / 245 * 3600)


def test_a_finished_campaign_keeps_its_pace() -> None:
    """Budget reached: its pace is that of its last trials, whenever status is asked. It
    was divided by the time since, and read 0.8 trials/h recently the next day."""
    done = optuna.create_study(study_name="live", direction="minimize")
    model = _study(budget=10)
    for key, value in model.user_attrs.items():
        done.set_user_attr(key, value)
    done.add_trials([t for t in model.get_trials() if t.state != TrialState.RUNNING])
    # Finishes at NOW-5-60k: 10 since the first start, NOW - 645, over 640 s.
    for later in (0.0, 86400.0):
        status = read_status(done, now=NOW + later)
        assert status.per_hour == pytest.approx(10 / 640 * 3600), later
    out = io.StringIO()
    print_status(done, Console(file=out, width=100, color_system=None), now=NOW + 86400)
    assert "budget reached; 56.2 trials/h recently" in out.getvalue()


def test_the_pace_of_a_campaign_written_in_another_time_zone() -> None:
    """Optuna's trial dates are the driver's local time without a zone: read from a shell
    5 h apart (a laptop, a batch job's TZ) the last trial had finished '5 h 00 min ago'
    and the pace was off by as much. The workers' Unix times are used where recorded."""
    here = _study()
    there = optuna.create_study(study_name="live", direction="minimize")
    for key, value in here.user_attrs.items():
        there.set_user_attr(key, value)
    shifted = []
    for trial in here.get_trials():
        trial = copy.deepcopy(trial)
        start, end = trial.datetime_start, trial.datetime_complete
        if trial.state != TrialState.RUNNING:
            assert start is not None and end is not None
            trial.user_attrs.update(started=start.timestamp(), finished=end.timestamp())
            trial.datetime_complete = end - dt.timedelta(hours=5)
        if start is not None:
            trial.datetime_start = start - dt.timedelta(hours=5)
        shifted.append(trial)
    there.add_trials(shifted)
    expected = read_status(here, now=NOW)
    status = read_status(there, now=NOW)
    assert status.last_finish_ago == pytest.approx(5.0)
    assert status.per_hour == pytest.approx(expected.per_hour)


def test_printed_table() -> None:
    out = io.StringIO()
    print_status(_study(), Console(file=out, width=100, color_system=None), now=NOW)
    text = out.getvalue()
    assert "live  finished 10 of 30" in text
    assert "FAIL (infrastructure)" in text
    assert "best: trial 6  loss 0" in text and "x=0.6" in text
    assert "tcp://10.0.0.0:1" in text and "(not reported yet)" in text
    assert "ETA" in text and "for 20 trials" in text
    # Durations read as in the report (supervisor.report.fmt.seconds), since the two
    # formatters were merged: elapsed 30 s and 90 s, ETA 20 x 64.5 s.
    assert "30.0 s" in text and "1 min 30 s" in text
    assert "ETA 21 min 30 s for 20 trials" in text
    assert "cost: 0.278 core-hours (complete 0.278); from the trials' own times" in text

    done = _study(budget=10)
    out = io.StringIO()
    print_status(done, Console(file=out, width=100, color_system=None), now=NOW)
    assert "budget reached" in out.getvalue()


def test_an_ipv6_worker_address_is_shown_whole() -> None:
    """The running table read 'tcp://:40000': rich took '[fd00::5]' for a markup tag."""
    study = optuna.create_study(study_name="six", direction="minimize")
    t = create_trial(
        state=TrialState.RUNNING,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0.0, 1.0)},
        user_attrs={"worker": "tcp://[fd00::5]:40000"},
    )
    t.datetime_start = dt.datetime.fromtimestamp(NOW - 30)
    study.add_trial(t)
    out = io.StringIO()
    print_status(study, Console(file=out, width=100, color_system=None), now=NOW)
    assert "tcp://[fd00::5]:40000" in out.getvalue()


def test_trials_of_a_dead_driver_are_orphans() -> None:
    """RUNNING trials whose driver is gone get no ETA: nobody will finish them."""
    study = _study()
    gone, alive = "node9:4242:dead", "node8:4243:live"
    study.set_user_attr(attrs.HEARTBEAT_PREFIX + gone, NOW - 600)
    study.set_user_attr(attrs.HEARTBEAT_PREFIX + alive, NOW - 10)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial, driver in zip(running, (gone, alive), strict=True):
        study._storage.set_trial_user_attr(trial._trial_id, attrs.DRIVER, driver)
    status = read_status(study, now=NOW)
    assert [(r.number, r.orphaned) for r in status.running] == [(11, True), (12, False)]
    assert status.eta is not None  # trial 12 still runs

    study._storage.set_trial_user_attr(running[1]._trial_id, attrs.DRIVER, gone)
    out = io.StringIO()
    print_status(study, Console(file=out, width=120, color_system=None), now=NOW)
    text = out.getvalue()
    assert "(driver gone)" in text and "ETA" not in text
    assert "the driver of the 2 RUNNING trials is gone" in text


def test_the_eta_of_a_resumed_campaign_is_that_of_its_new_session() -> None:
    """10 trials finished yesterday; the search resumed 10 min ago and has finished 2,
    one runs. The throughput was 12 finishes over more than a day (0.5/h: ETA 36 h for
    the 18 trials left), where this session finishes 12 an hour."""
    study = optuna.create_study(study_name="resumed", direction="minimize")
    study.set_user_attr(attrs.CONFIG, {"budget": {"trials": 30, "epochs": 2}})
    old, new = "node9:4242:yesterday", "node8:4243:today"
    study.set_user_attr(attrs.HEARTBEAT_PREFIX + new, NOW - 3)
    x = FloatDistribution(0.0, 1.0)
    day = 86400.0
    # (driver, start, end): yesterday one a minute; today from NOW - 600.
    runs = [(old, NOW - day - 60 * (10 - i) - 100, NOW - day - 60 * (10 - i)) for i in range(10)]
    runs += [(new, NOW - 600, NOW - 300), (new, NOW - 500, NOW - 60), (new, NOW - 50, None)]
    trials = []
    for i, (driver, start, end) in enumerate(runs):
        t = create_trial(
            state=TrialState.COMPLETE if end else TrialState.RUNNING,
            params={"x": i / 20},
            distributions={"x": x},
            value=0.5 if end else None,
            user_attrs={attrs.DRIVER: driver},
        )
        t.datetime_start = dt.datetime.fromtimestamp(start)
        t.datetime_complete = dt.datetime.fromtimestamp(end) if end else None
        trials.append(t)
    study.add_trials(trials)
    status = read_status(study, now=NOW)
    assert status.done == 12 and status.left == 18 and len(status.active) == 1
    assert status.per_hour == pytest.approx(2 / 600 * 3600)  # since its first start
    assert status.eta == pytest.approx(18 / 12 * 3600)


WRITER = textwrap.dedent(
    """
    # Writes trials as the driver does (ask, attributes, tell) until STOP appears.
    import os, socket, sys, time
    from pathlib import Path
    import optuna
    from supervisor.study import attrs
    import supervisor.rundir as rundir
    from supervisor.study.storage import open_storage

    run_dir, stop = Path(sys.argv[1]), Path(sys.argv[2])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rundir.write_record(run_dir, rundir.RunRecord("live", None, "x.yaml", "supervisor search x"))
    storage = open_storage(rundir.journal_url(run_dir))
    study = optuna.create_study(study_name="live", storage=storage, direction="minimize")
    study.set_user_attr(attrs.CONFIG, {"budget": {"trials": 100000, "epochs": 3}})
    study.set_user_attr(attrs.OBJECTIVES, ["loss"])
    running = []
    n = 0
    while not stop.exists():
        trial = study.ask()
        trial.set_user_attr(attrs.DRIVER, f"{socket.gethostname()}:{os.getpid()}:test")
        trial.set_user_attr("worker", f"tcp://10.0.0.{n % 3}:4000")
        trial.suggest_float("x", -1, 1)
        running.append((trial, time.time()))
        n += 1
        if len(running) > 2:
            done, started = running.pop(0)
            for epoch in range(3):
                done.report(1.0 / (epoch + 1), epoch)
            done.set_user_attr("history", [{"epoch": 0.0, "loss": 1.0}])
            done.set_user_attr("started", started)
            done.set_user_attr("finished", time.time())
            done.set_user_attr("duration_s", time.time() - started)
            study.tell(done, done.params["x"] ** 2)
        if n == 3:
            print("ready", flush=True)
        time.sleep(0.1)
    """
)


def test_status_and_report_while_a_campaign_writes(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "live"
    run_dir.mkdir(parents=True)
    stop = tmp_path / "STOP"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(run_dir), str(stop)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        study = load_study(rundir.journal_url(run_dir), "live")  # another reader
        seen = []
        for _ in range(5):
            status = read_status(study)
            seen.append(status.done)
            assert status.states.get("RUNNING", 0) >= 1
            # The writer records a trial's worker in an append after the trial's own:
            # only the newest may be read between the two.
            workers = [r.worker for r in sorted(status.running, key=lambda r: r.number)]
            assert all(w.startswith("tcp://10.0.0.") for w in workers[:-1]), workers
            assert workers[-1] in ("", *(f"tcp://10.0.0.{i}:4000" for i in range(3)))
            time.sleep(0.2)
        assert seen == sorted(seen) and seen[-1] > seen[0]  # it sees the campaign advance

        command = [sys.executable, "-m", "supervisor.cli"]
        where = ["--runs-dir", str(tmp_path / "runs")]
        shown = subprocess.run(
            [*command, "status", "live", *where], capture_output=True, text=True, cwd=ROOT
        )
        assert shown.returncode == 0, shown.stderr
        assert "live  finished" in shown.stdout and "running trial" in shown.stdout
        assert "ETA" in shown.stdout

        out = tmp_path / "live.html"
        report = subprocess.run(
            [*command, "report", "live", *where, "-o", str(out)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert report.returncode == 0, report.stderr
        html = out.read_text(encoding="utf-8")
        assert html.rstrip().endswith("</html>") and "RUNNING (" in html
    finally:
        stop.touch()
        writer.wait(timeout=30)
    assert writer.returncode == 0


def test_a_best_trial_not_trained_here_says_where_it_was() -> None:
    """The best of a warm-started campaign can be a trial of the earlier run: status
    named it as if trained here, and the user looked for its model and worker in vain."""
    study = _study()
    x = FloatDistribution(0.0, 1.0)
    told = {attrs.WARM_START: "lr-sweep#3"}
    study.add_trial(
        create_trial(value=-1.0, params={"x": 0.9}, distributions={"x": x}, user_attrs=told)
    )
    out = io.StringIO()
    status = print_status(study, Console(file=out, width=120, color_system=None), now=NOW)
    assert status.best_number == 13
    assert "best: trial 13 (warm start: trained in lr-sweep#3, not in this campaign)" in (
        out.getvalue()
    )
    out = io.StringIO()
    print_status(_study(), Console(file=out, width=120, color_system=None), now=NOW)
    assert "best: trial 6  loss 0" in out.getvalue()  # one of this campaign: as before


def test_the_notebook_view_of_a_run_says_where_its_best_was_trained(tmp_path: Path) -> None:
    """``Run._repr_html_`` (a run shown in a notebook) reads the same status."""
    from supervisor.api import open_run
    from supervisor.study.storage import open_storage

    run_dir = tmp_path / "runs" / "warm"
    run_dir.mkdir(parents=True)
    rundir.write_record(run_dir, rundir.RunRecord("warm", None, "warm.yaml", "search"))
    study = optuna.create_study(
        study_name="warm", storage=open_storage(rundir.journal_url(run_dir))
    )
    x = FloatDistribution(0.0, 1.0)
    told = {attrs.WARM_START: "lr-sweep#3"}
    study.add_trial(create_trial(value=0.5, params={"x": 0.9}, distributions={"x": x}))
    study.add_trial(
        create_trial(value=0.1, params={"x": 0.2}, distributions={"x": x}, user_attrs=told)
    )
    html = open_run(str(run_dir))._repr_html_()
    assert "trial 1 (warm start: trained in lr-sweep#3, not in this campaign): 0.1" in html


def test_status_watch_outlasts_a_storage_away_and_reads_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``status --watch`` over days: the journal's file system away for a while (or a
    database past its reconnect wait) ended the watch with an error; now it says so once,
    keeps looking and shows the table again once the storage is back. Each look reads
    only what is new, not the whole journal again, and lists the driver jobs of a
    `supervisor submit` chain as they are then (the first look's list stayed)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    import supervisor.commands.show_status as show
    import supervisor.study.storage as storage

    run_dir = tmp_path / "runs" / "live"
    run_dir.mkdir(parents=True)
    journal = run_dir / rundir.JOURNAL_FILE
    stored = optuna.create_study(
        study_name="live",
        storage=JournalStorage(JournalFileBackend(str(journal))),
        direction="minimize",
    )
    model = _study()
    for key, value in model.user_attrs.items():
        stored.set_user_attr(key, value)
    stored.add_trials(model.get_trials())
    rundir.write_record(run_dir, rundir.RunRecord("live", None, "space.yaml", "supervisor search"))
    opens = []
    real_load = storage.load_study
    monkeypatch.setattr(storage, "load_study", lambda *a: opens.append(a) or real_load(*a))
    # Each look of the watch: the file system goes away for two looks, then comes back.
    chain = run_dir / "driver" / "chain.json"
    chain.parent.mkdir()
    chain.write_text('[{"job_id": "101"}]')
    steps = iter(
        [
            lambda: chain.write_text('[{"job_id": "101"}, {"job_id": "102"}]'),  # next link
            lambda: journal.rename(tmp_path / "away"),
            lambda: None,
            lambda: (tmp_path / "away").rename(journal),
            lambda: None,
        ]
    )

    def sleep(seconds: float, wait: Any = time.sleep) -> None:
        if seconds != 5:  # another's: squeue's subprocess polls with it, and took a step
            return wait(seconds)
        wait(0.02)  # the journal is looked at again after 5 ms (journal_file.FRESH)
        step = next(steps, None)
        if step is None:
            raise KeyboardInterrupt  # the user's Ctrl-C
        step()

    monkeypatch.setattr(show.time, "sleep", sleep)
    with pytest.raises(KeyboardInterrupt):
        show.show_status("live", tmp_path / "runs", watch=5)
    out, err = capsys.readouterr()
    assert out.count("live  finished 10 of 30") == 4, out  # the first look, 1 and 4, 5
    assert err.count("cannot read the run's storage") == 1, err
    assert "journal.log" in err and "looking again every 5 s" in err
    assert len(opens) == 3  # at the start, and while away and once back: not every look
    assert out.count("Driver jobs: 1 (101);") == 1, out
    assert out.count("Driver jobs: 2 (101, 102);") == 3, out  # each look lists the chain


def test_status_of_a_journal_campaign_loads_no_database_library(tmp_path: Path) -> None:
    """`supervisor status` imported SQLAlchemy for what a database storage raises while
    its server is away, with a journal too: 0.1 to 0.8 s of every status (a fifth of one
    at 100 trials), for errors a journal never raises."""
    from supervisor.perf.report_scale import make_campaign

    make_campaign(tmp_path / "runs" / "scale", 20)
    script = (
        "import sys\nfrom supervisor.cli import main\n"
        "sys.argv = ['supervisor', 'status', 'scale', '--runs-dir', sys.argv[1]]\n"
        "try:\n    main()\nfinally:\n    print('sqlalchemy' in sys.modules, file=sys.stderr)\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert shown.returncode == 0, shown.stderr
    assert "scale  finished" in shown.stdout
    assert shown.stderr.strip().splitlines()[-1] == "False", shown.stderr
