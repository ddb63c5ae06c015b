"""The Python API: what a notebook user relies on, with the same validation as the CLI."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import supervisor
from supervisor.config import space as space_module

TOY = "tests.toy_benchmark:ToyBenchmark"


def toy_space(study: str = "api-toy", trials: int = 6, objectives: Any = None) -> dict[str, Any]:
    return {
        "study": study,
        "benchmark": {"name": TOY, "options": {"delay": 0.0}},
        "objectives": objectives or ["loss"],
        "params": {"x": {"type": "float", "low": -4, "high": 4}},
        "budget": {"trials": trials, "epochs": 2},
        "sampler": "random",
        "seed": 3,
    }


def command_line(process: Any) -> str:
    """Its command line; "" once it has ended (a zombie, not yet reaped, is no process
    left running): psutil raised ZombieProcess, failing a test in a long run."""
    import psutil

    try:
        return " ".join(process.cmdline())
    except psutil.NoSuchProcess:  # ZombieProcess included
        return ""


def new_children(before: set[int]) -> list[Any]:
    """This process's descendants not in ``before`` (an earlier test's), Python's
    resource tracker aside (it lives as long as the interpreter)."""
    import psutil

    return [
        p
        for p in psutil.Process().children(recursive=True)
        if p.pid not in before and "resource_tracker" not in command_line(p)
    ]


def interrupt_closing_clients(monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any]]:
    """A Ctrl-C as each Dask client made from now on (the search's) first closes. Returns
    the clients made and those whose close was interrupted."""
    from distributed import Client

    init, close = Client.__init__, Client.close
    made: list[Client] = []
    interrupted: list[Client] = []

    def recorded_init(self: Client, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        init(self, *args, **kwargs)

    def interrupted_close(self: Client, *args: Any, **kwargs: Any) -> Any:
        # Not every close: a client of an earlier test of this process, freed by the cyclic
        # GC (in any thread, at any moment), closes from its __del__; that Ctrl-C stopped
        # the search before its trial ended (done == 0, in long runs only).
        if any(self is c for c in made) and not any(self is c for c in interrupted):
            interrupted.append(self)
            os.kill(os.getpid(), signal.SIGINT)
        return close(self, *args, **kwargs)

    monkeypatch.setattr(Client, "__init__", recorded_init)
    monkeypatch.setattr(Client, "close", interrupted_close)
    return made, interrupted


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_public_api_is_declared() -> None:
    assert set(supervisor.__all__) >= {"search", "open_run", "Run", "UserError"}
    for name in supervisor.__all__:
        assert getattr(supervisor, name) is not None


def test_a_search_from_a_mapping_in_five_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run = supervisor.search(toy_space(), workers=2, progress="none")
    assert run.summary is not None and run.summary.stopped_by == "budget"
    frame = run.trials
    assert len(frame) == 6 and set(frame["state"]) == {"COMPLETE"}
    best = run.best
    assert best.values[0] == frame["loss"].min()
    assert set(best.params) == {"x"}
    status = run.status()
    assert (status.done, status.requested, status.best_number) == (6, 6, best.number)
    assert run.report_path == Path("reports/api-toy.html") and run.report_path.is_file()
    # The mapping is kept with the run, so that later commands read the same space.
    kept = space_module.load(run.run_dir / "space.yaml")
    assert kept.study_name == "api-toy" and kept.budget.trials == 6
    record = json.loads((run.run_dir / "run.json").read_text())
    assert record["space_file"].endswith("space.yaml")
    assert "Python API" in record["command"]


def test_open_run_by_name_or_directory_reads_the_same_campaign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    supervisor.search(toy_space(trials=4), workers=1, report=False, progress="none")
    by_name = supervisor.open_run("api-toy")
    by_path = supervisor.open_run(tmp_path / "runs" / "api-toy")
    assert by_name.best.number == by_path.best.number
    assert len(by_name.trials) == 4 and by_name.summary is None
    assert by_name.study.study_name == "api-toy"
    with pytest.raises(supervisor.UserError, match="output: expected a path, got 5"):
        by_name.report(5)  # type: ignore[arg-type]  # was a TypeError from pathlib
    written = by_name.report(tmp_path / "out" / "r.html")
    assert written == [tmp_path / "out" / "r.html"] and written[0].is_file()
    assert "api-toy" in by_name._repr_html_()
    # ``candidates`` is the command's --candidates, checked as the command checks it
    with pytest.raises(supervisor.UserError, match="--candidates 2: applies to --select seeds"):
        by_name.ensemble(select="topk", candidates=2)
    for name in ("scheduler", "launcher"):  # AttributeErrors from deep in the cluster code
        with pytest.raises(supervisor.UserError, match=rf"^{name}: expected text, got 5$"):
            by_name.ensemble(**{name: 5})
    for trial in ("0", True):  # not a trial number (True was trial 1)
        with pytest.raises(supervisor.UserError, match="trial: expected a trial number"):
            by_name.rerun(trial)  # type: ignore[arg-type]
    # A number read from the DataFrame is numpy's: "expected a trial number, got np.int64(0)".
    best = by_name.trials.sort_values("loss")["number"].iloc[0]
    assert by_name.rerun(best).identical


def test_a_rerun_resumes_instead_of_starting_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    supervisor.search(toy_space(trials=3), workers=1, report=False, progress="none")
    run = supervisor.search(toy_space(trials=3), trials=5, workers=1, progress="none")
    assert len(run.trials) == 5
    assert run.summary is not None and sum(run.summary.states.values()) == 2


def test_an_experiment_object_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = space_module.space_text(toy_space(study="from-file", trials=2))
    (tmp_path / "s.yaml").write_text(text)
    exp = space_module.load(tmp_path / "s.yaml")
    run = supervisor.search(exp, workers=1, report=False, progress="none")
    assert run.study_name == "from-file" and len(run.trials) == 2


def test_several_objectives_have_a_pareto_front_not_a_best_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    objectives = ["loss", {"metric": "train_seconds", "direction": "minimize"}]
    run = supervisor.search(
        toy_space(study="two", trials=4, objectives=objectives),
        workers=1,
        report=False,
        progress="none",
    )
    with pytest.raises(supervisor.UserError, match="best_trials"):
        _ = run.best
    assert 1 <= len(run.best_trials) <= 4


@pytest.mark.parametrize(
    ("space", "kwargs", "message"),
    [
        ({"study": "x"}, {}, "missing required key 'benchmark'"),
        # "no 'study' and the file name '<space mapping>' is no study name"
        (
            {k: v for k, v in toy_space().items() if k != "study"},
            {},
            "<space mapping>: missing key 'study' (or give search(..., study=NAME))",
        ),
        (toy_space() | {"budget": {"trials": 0, "epochs": 1}}, {}, "budget.trials"),
        (toy_space(), {"progress": "fancy"}, "progress"),
        (toy_space(), {"storage": "nonsense"}, "--storage"),
        (toy_space(study="good"), {"storage": "sqlite:///elsewhere.db"}, "was run with storage"),
        (42, {}, "expected a file path, a mapping or an Experiment"),
        ({"study": object()}, {}, "not plain YAML data"),
        (
            toy_space() | {"benchmark": {"name": TOY, "options": {"delay": 1j}}},
            {},
            "space.benchmark.options.delay: complex '1j': not plain YAML data",
        ),
        (toy_space(), {"study": 5}, "study: expected text, got 5"),
        (toy_space(), {"reports_dir": None}, "reports_dir: expected a path, got None"),
        (toy_space(), {"report": "no"}, "report: expected True or False, got 'no'"),
        (toy_space(), {"warm_start": "nowhere"}, "warm_start: nowhere: no run found"),
        (toy_space(), {"warm_start": [3]}, "warm_start: expected run names or paths"),
        (toy_space(), {"dashboard": 5}, "dashboard: expected text, got 5"),
        (
            toy_space(),  # the dashboard was ignored in silence
            {"workers": None, "scheduler": "tcp://127.0.0.1:1", "dashboard": ":0"},
            "--scheduler and --dashboard exclude each other",
        ),
    ],
)
def test_bad_input_raises_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, space: Any, kwargs: Any, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    supervisor.search(toy_space(study="good", trials=2), workers=1, progress="none")
    before = tree_digest(tmp_path)
    with pytest.raises(supervisor.UserError) as caught:
        supervisor.search(space, **{"workers": 1, "progress": "none", **kwargs})
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert tree_digest(tmp_path) == before


def test_open_run_of_nothing_says_what_it_looked_for(tmp_path: Path) -> None:
    with pytest.raises(supervisor.UserError, match="no run found"):
        supervisor.open_run("missing", runs_dir=tmp_path)
    with pytest.raises(supervisor.UserError, match="runs_dir: expected a path, got 5"):
        supervisor.open_run("missing", runs_dir=5)  # type: ignore[arg-type]  # a TypeError
    # It looked for a run named "None" (or "5", "True") and said none was found.
    for run in (None, 5, True):
        with pytest.raises(supervisor.UserError, match=rf"^run: expected a .* got {run}$"):
            supervisor.open_run(run)  # type: ignore[arg-type]


def test_the_documented_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import doctest

    import supervisor.api

    monkeypatch.chdir(tmp_path)
    for module in (supervisor, supervisor.api):
        failed, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
        assert failed == 0, f"{module.__name__}: {failed} of {tried} examples failed"
    assert tried >= 4


def interrupt_when(done: Callable[[], bool]) -> threading.Thread:
    """A thread that sends this process SIGINT (a notebook's interrupt button, Ctrl-C)
    once ``done()`` holds: a running campaign, not a cluster still starting."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # the run directory may not exist yet
                if done():
                    os.kill(os.getpid(), signal.SIGINT)
                    return
            time.sleep(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_an_interrupt_stops_the_caller_too_and_the_same_call_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psutil

    monkeypatch.chdir(tmp_path)
    space = toy_space(study="stopped", trials=40) | {
        "benchmark": {"name": TOY, "options": {"delay": 0.5}}
    }
    # Processes of earlier tests in this pytest process are not this search's.
    before = {q.pid for q in psutil.Process().children(recursive=True)}

    def trial_just_started() -> bool:
        # A trial with most of its second left is still running when the interrupt lands;
        # on a loaded machine the driver can sit between trials when one has just finished.
        status = supervisor.open_run("stopped").status()
        return status.done >= 1 and any(r.elapsed < 0.4 for r in status.running)

    watcher = interrupt_when(trial_just_started)
    # A loop of searches (or a notebook's "run all") must stop at the interrupt: the search
    # returned as if it had finished, and the next cell or iteration ran.
    with pytest.raises(KeyboardInterrupt) as caught:
        supervisor.search(space, workers=2, report=False, progress="none")
    watcher.join()
    stop = caught.value
    assert isinstance(stop, supervisor.Interrupted) and stop.signal == "SIGINT"
    assert "'stopped' stopped by SIGINT" in str(stop) and "\n" not in str(stop)
    assert stop.run.summary.stopped_by == "interrupt"
    frame = stop.run.trials
    assert "RUNNING" not in set(frame["state"]) and "interrupted" in set(frame["failure"])
    workers = new_children(before)
    _, alive = psutil.wait_procs(workers, timeout=30)  # exiting takes a moment when loaded
    # The cluster is closed: no scheduler, worker or trial left.
    assert not alive, [(q.pid, command_line(q)[:200]) for q in alive]
    done = stop.run.status().done
    run = supervisor.search(space, trials=done + 2, workers=2, report=False, progress="none")
    assert run.summary is not None and run.summary.stopped_by == "budget"
    assert run.status().done == done + 2


def test_an_ensemble_asked_for_no_progress_prints_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    space = toy_space(study="quiet", trials=2, objectives=["val_nll"]) | {
        "benchmark": {"name": "tests.toy_classifier:ToyClassifier"},
        "params": {"lr": {"type": "float", "low": 0.05, "high": 1.0}},
    }
    import numpy as np
    import optuna

    # A notebook that studies with Optuna too keeps its log level: it was WARNING after.
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        run = supervisor.search(space, workers=1, report=False, progress="none")
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
        with pytest.raises(supervisor.UserError, match="progress: expected auto, plain or none"):
            run.ensemble(select="topk", size=2, progress="fancy")  # was taken for "auto"
        capsys.readouterr()
        size = np.int64(2)  # computed with numpy: "--size np.int64(2): expected an integer"
        built = run.ensemble(select="seeds", size=size, workers=1, progress="none")
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(previous)
    assert len(built.members) == 2
    # It printed the members' training, trial by trial, and the cluster it started.
    assert capsys.readouterr().out == ""


def test_an_interrupt_while_the_cluster_starts_leaves_no_process_and_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import psutil

    from supervisor.clusters.scheduler_process import SchedulerProcess

    monkeypatch.chdir(tmp_path)
    started = SchedulerProcess.start

    async def start_then_interrupt(self: SchedulerProcess) -> None:
        await started(self)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C with the scheduler up, workers starting

    monkeypatch.setattr(SchedulerProcess, "start", start_then_interrupt)
    before = {q.pid for q in psutil.Process().children(recursive=True)}
    with pytest.raises(KeyboardInterrupt):
        supervisor.search(toy_space(study="early"), workers=1, progress="none")
    # The scheduler outlived the interrupt (until the interpreter, a notebook's kernel,
    # exited) and the half-started workers logged tracebacks of their lost certificate.
    new = new_children(before)
    _, alive = psutil.wait_procs(new, timeout=20)
    assert not alive, [(q.pid, command_line(q)[:200]) for q in alive]
    assert "Traceback" not in capfd.readouterr().err
    assert not (tmp_path / "runs" / "early").exists()
    monkeypatch.setattr(SchedulerProcess, "start", started)
    run = supervisor.search(toy_space(study="early"), workers=1, progress="none")
    assert run.status().done == 6


def test_a_second_interrupt_as_the_half_started_cluster_closes_leaves_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psutil

    from supervisor.clusters.scheduler_process import SchedulerProcess

    monkeypatch.chdir(tmp_path)
    started = SchedulerProcess.start

    async def start_then_interrupt(self: SchedulerProcess) -> None:
        await started(self)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as the cluster starts: it waits

    monkeypatch.setattr(SchedulerProcess, "start", start_then_interrupt)
    made, interrupted = interrupt_closing_clients(monkeypatch)  # pressed again as it closes
    before = {q.pid for q in psutil.Process().children(recursive=True)}
    with pytest.raises(KeyboardInterrupt):
        supervisor.search(toy_space(study="early"), workers=1, progress="none")
    assert len(made) == 1 and interrupted == made
    # The close cut short, the scheduler and workers ran on (for a notebook kernel's life).
    _, alive = psutil.wait_procs(new_children(before), timeout=20)
    assert not alive, [(q.pid, command_line(q)[:200]) for q in alive]
    assert not (tmp_path / "runs" / "early").exists()


def test_a_benchmark_on_the_notebooks_own_sys_path_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    # A notebook's sys.path.append("src"): the driver loads the benchmark from there.
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(Path(__file__).with_name("toy_benchmark.py"), src / "notebook_bench.py")
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.chdir(tmp_path)
    space = toy_space(study="own-path", trials=2)
    space["benchmark"] = {"name": "notebook_bench:ToyBenchmark"}
    run = supervisor.search(space, workers=1, report=False, progress="none")
    # Each trial failed: "cannot load benchmark: No module named 'notebook_bench'".
    frame = run.trials
    assert set(frame["state"]) == {"COMPLETE"}, frame.get("error")


def test_an_interrupt_while_the_run_is_written_leaves_a_run_that_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import supervisor.rundir as rundir

    monkeypatch.chdir(tmp_path)
    write_record = rundir.write_record

    def interrupted_first(run_dir: Path, record: rundir.RunRecord) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as the study has just been made
        write_record(run_dir, record)

    monkeypatch.setattr(rundir, "write_record", interrupted_first)
    with pytest.raises(KeyboardInterrupt):
        supervisor.search(toy_space(study="half"), workers=1, progress="none")
    # It had a journal and a space.yaml, no run.json: "half: no run found".
    run = supervisor.open_run("half")
    assert run.manifest is not None and run.status().done == 0


SCRIPT = """\
import supervisor
from tests.test_api import toy_space

def main():
    supervisor.search(toy_space(study="script", trials=1), workers=1, progress="none")
    print("searched")

{call}
"""


@pytest.mark.parametrize("guarded", [False, True])
def test_a_script_without_the_main_guard_is_told_so_in_one_line(
    tmp_path: Path, guarded: bool
) -> None:
    import subprocess
    import sys

    call = 'if __name__ == "__main__":\n    main()' if guarded else "main()"
    (tmp_path / "campaign.py").write_text(SCRIPT.format(call=call))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "campaign.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if guarded:
        assert done.returncode == 0 and done.stdout == "searched\n", done.stderr[-2000:]
        return
    # Each worker ran the script again: some 200 lines of Dask and multiprocessing
    # tracebacks, the cause ("bootstrapping phase") somewhere in the middle.
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "supervisor.errors.UserError: campaign.py:8: this starts Dask worker processes,"
        " which import campaign.py again and would run this line there too: put it under"
        ' if __name__ == "__main__":'
    ), done.stderr[-2000:]
    assert "Nanny" not in done.stderr and not (tmp_path / "runs").exists()


def test_a_search_aborted_in_this_interpreter_is_taken_over_by_the_next_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from supervisor.study.driver import Driver

    monkeypatch.chdir(tmp_path)
    space = toy_space(study="aborted", trials=4) | {
        "benchmark": {"name": TOY, "options": {"delay": 0.5}}
    }
    handle = Driver._handle

    def abort_once_running(self: Driver, items: list[tuple[str, Any]]) -> None:
        if self.inflight:  # a second Ctrl-C ("the user insists") with trials running
            raise KeyboardInterrupt
        handle(self, items)

    monkeypatch.setattr(Driver, "_handle", abort_once_running)
    with pytest.raises(KeyboardInterrupt):
        supervisor.search(space, workers=2, report=False, progress="none")
    monkeypatch.setattr(Driver, "_handle", handle)
    assert "RUNNING" in set(supervisor.open_run("aborted").trials["state"])
    # The same notebook cell again: the aborted driver's trials were taken for a live
    # driver's (their driver's pid is this interpreter's), and waited for until the time
    # limit; without one, for ever.
    run = supervisor.search(space, timeout=30, workers=2, report=False, progress="none")
    assert run.summary is not None and run.summary.stopped_by == "budget"
    assert run.summary.recovered.zombies and run.status().done == 4


def test_an_interrupt_while_the_cluster_closes_leaves_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psutil

    monkeypatch.chdir(tmp_path)
    made, interrupted = interrupt_closing_clients(monkeypatch)
    before = {q.pid for q in psutil.Process().children(recursive=True)}
    with pytest.raises(KeyboardInterrupt):
        supervisor.search(toy_space(study="closing", trials=1), workers=1, progress="none")
    assert len(made) == 1 and interrupted == made
    # Cut short, the close left the scheduler process running for the interpreter's life.
    new = new_children(before)
    _, alive = psutil.wait_procs(new, timeout=20)
    assert not alive, [(q.pid, command_line(q)[:200]) for q in alive]
    assert supervisor.open_run("closing").status().done == 1


def test_a_space_of_numpy_numbers_tuples_and_paths_means_what_it_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import OrderedDict

    import numpy as np

    monkeypatch.chdir(tmp_path)
    space = toy_space(study="numpy", trials=2)
    # What a notebook computes: bounds from numpy, choices as a tuple or an array.
    space["params"] = OrderedDict(
        x={"type": "float", "low": np.log(0.5), "high": np.float32(2.0)},
        n={"type": "int", "low": np.int64(1), "high": 3},
        c={"type": "categorical", "choices": np.array([8, 16])},
        t={"type": "categorical", "choices": ("a", "b")},
    )
    space["description"] = tmp_path / "notes"
    # Each was "space: not plain YAML data (('cannot represent an object', ...))".
    # Counts computed with numpy: "--trials np.int64(2): expected an integer from 1 to ..."
    trials, workers = np.int64(2), np.arange(3)[1]
    run = supervisor.search(space, trials=trials, workers=workers, report=False, progress="none")
    kept = space_module.load(run.run_dir / "space.yaml")
    params = {p.name: p for p in kept.params}
    assert params["x"].low == pytest.approx(np.log(0.5)) and params["n"].low == 1
    assert params["c"].choices == (8, 16) and params["t"].choices == ("a", "b")
    assert kept.description == str(tmp_path / "notes")
    assert len(run.trials) == 2


def test_bad_input_is_a_value_error_that_says_what_it_is(tmp_path: Path) -> None:
    # A caller catching Python's own error for a bad argument catches ours.
    with pytest.raises(ValueError, match=r"^progress: expected auto, plain or none"):
        supervisor.search({}, progress="fancy")
    # ...and one check inside another ValueError clause still says its own problem.
    record = tmp_path / "big" / "run.json"
    record.parent.mkdir()
    record.write_text(" " * 1_000_001)
    with pytest.raises(supervisor.UserError) as caught:
        supervisor.open_run(record.parent)
    assert str(caught.value) == f"{record}: 1000001 bytes; a run record is a few hundred"


def test_a_run_held_across_a_change_of_directory_is_the_same_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(here)
    space = toy_space(study="moved", trials=2)
    run = supervisor.search(space, storage="sqlite:///moved.db", workers=1, progress="none")
    opened = supervisor.open_run("moved")
    monkeypatch.chdir(elsewhere)  # a notebook's %cd
    for held in (run, opened):
        # The manifest was None, the report went to elsewhere/reports, and the relative
        # SQLite file was made anew (empty) in elsewhere: "study not found".
        assert held.manifest is not None and held.record.study == "moved"
        assert len(held.trials) == 2
        assert held.report() == [here / "reports" / "moved.html"]
    assert list(elsewhere.iterdir()) == []


def test_a_run_on_a_relative_sqlite_file_opens_from_any_folder_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run.json keeps the SQLite file's absolute path: a run opened from another folder
    found no database ("moved or deleted?"), or an empty one; resuming with the relative
    URL it was started with is the same storage."""
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(here)
    space = toy_space(study="rel", trials=2)
    supervisor.search(space, storage="sqlite:///rel.db", workers=1, progress="none")
    record = json.loads((here / "runs" / "rel" / "run.json").read_text())
    assert record["storage"] == f"sqlite:///{here / 'rel.db'}"
    monkeypatch.chdir(elsewhere)
    assert len(supervisor.open_run(here / "runs" / "rel").trials) == 2
    assert list(elsewhere.iterdir()) == []
    monkeypatch.chdir(here)
    space["budget"]["trials"] = 3
    again = supervisor.search(space, storage="sqlite:///rel.db", workers=1, progress="none")
    assert len(again.trials) == 3
