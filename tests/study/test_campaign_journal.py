"""The campaign journal: Optuna's JournalStorage with batched attribute writes, an index
of queued trials and durable records only where a crash would lose work. Its file stays
Optuna's format: a stock JournalStorage reads it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

import supervisor.optuna_internals as internals
from supervisor.study import flusher, journal_file
from supervisor.study.journal_file import FRESH
from supervisor.study.storage import (
    CampaignJournalStorage,
    batch,
    flush,
    open_storage,
    set_user_attrs,
)

X = {"x": optuna.distributions.FloatDistribution(-4, 4)}


@pytest.fixture(autouse=True)
def _quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def lines(path: Path) -> int:
    return len(path.read_bytes().splitlines())


def fsyncs_of(journal: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The fsyncs of ``journal`` from now on (not those of another test's journal,
    whose flusher may still be waiting out its GAP)."""
    synced: list[int] = []
    real = os.fsync
    inode = journal.stat().st_ino

    def fsync(fd: int) -> None:
        if os.fstat(fd).st_ino == inode:
            synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def test_a_trials_attributes_are_one_append_and_a_stock_reader_sees_them(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    storage = open_storage(f"journal:{path}")
    assert isinstance(storage, CampaignJournalStorage)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask(X)
    appends = []
    original = storage._backend.append_logs
    storage._backend.append_logs = lambda logs: (appends.append(len(logs)), original(logs))[1]  # type: ignore[method-assign]
    values = {"worker": "tcp://a:1", "hostname": "nid001", "duration_s": 1.5, "metrics": {"a": 1}}
    set_user_attrs(trial, values)
    assert appends == [4], "one append of four records"
    assert trial.user_attrs == values  # the trial object sees them at once
    study.tell(trial, 0.5)

    stock = optuna.load_study(
        study_name="s", storage=JournalStorage(JournalFileBackend(str(path)))
    )
    assert stock.trials[0].user_attrs == values
    assert stock.trials[0].value == 0.5


def test_set_user_attrs_on_other_storages_writes_each(tmp_path: Path) -> None:
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path}/s.db"))
    trial = study.ask(X)
    set_user_attrs(trial, {"a": 1, "b": [2, 3]})
    assert study.trials[0].user_attrs == {"a": 1, "b": [2, 3]}


def test_queued_trials_pop_in_order_once_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    one = optuna.create_study(study_name="s", storage=open_storage(f"journal:{path}"))
    for x in (1.0, 2.0, 3.0):
        one.enqueue_trial({"x": x})
    # A second driver (its own storage object on the same file) shares the queue.
    two = optuna.load_study(study_name="s", storage=open_storage(f"journal:{path}"))
    got = [two.ask(X).params["x"], one.ask(X).params["x"], two.ask(X).params["x"]]
    assert got == [1.0, 2.0, 3.0]
    fresh = one.ask(X)  # the queue is empty: the sampler proposes
    assert fresh.number == 3 and "x" in fresh.params
    waiting = two.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert waiting == []
    # A storage opened on the whole file later rebuilds the same queue state.
    one.enqueue_trial({"x": 4.0})
    late = open_storage(f"journal:{path}")
    queued = late.get_all_trials(0, states=(TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"]["x"] for t in queued] == [4.0]


def test_only_records_a_crash_would_lose_work_with_are_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Durable records are fsynced off the writer's thread; ``flush`` waits for them."""
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{tmp_path}/j.log"))
    flush(study)  # the study's creation
    synced = fsyncs_of(tmp_path / "j.log", monkeypatch)
    trial = study.ask(X)  # a running trial: its driver would die with it
    set_user_attrs(trial, {"worker": "w"})
    flush(study)
    assert synced == []
    study.tell(trial, 1.0)  # a result
    flush(study)
    assert len(synced) == 1
    study.enqueue_trial({"x": 0.0})  # a queued re-run must survive a node crash
    flush(study)
    assert len(synced) == 2


def test_the_fsync_thread_ends_when_idle_and_comes_back_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that runs one campaign after another keeps no fsync thread per journal
    it once wrote, and a journal written again is still fsynced."""
    monkeypatch.setattr(flusher, "IDLE", 0.05)

    def fsync_threads() -> int:  # this journal's: other tests' may end meanwhile
        name = f"fsync {tmp_path / 'j.log'}"
        return sum(t.name == name and t.is_alive() for t in threading.enumerate())

    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{tmp_path}/j.log"))
    flush(study)
    deadline = time.monotonic() + 5
    while fsync_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fsync_threads() == 0
    synced = fsyncs_of(tmp_path / "j.log", monkeypatch)
    study.tell(study.ask(X), 1.0)
    flush(study)
    assert len(synced) == 1


def test_a_burst_of_results_is_fsynced_once_and_a_flush_does_not_wait_for_the_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short trials tell hundreds of results a second: fsyncs start GAP apart, one for
    all written before it, instead of one per result; a caller that waits (``flush``,
    the campaign's end, the process's exit) has its fsync at once."""
    monkeypatch.setattr(flusher, "GAP", 30.0, raising=False)
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{tmp_path}/j.log"))
    flush(study)  # the study's creation: an fsync, the last for GAP unless one waits
    synced = fsyncs_of(tmp_path / "j.log", monkeypatch)
    for x in range(20):
        study.tell(study.ask(X), float(x))
    start = time.monotonic()
    flush(study)
    assert len(synced) == 1, "twenty results, one fsync"
    assert time.monotonic() - start < 10, "a flush does not wait for GAP"
    monkeypatch.setattr(flusher, "GAP", 0.05)
    study.tell(study.ask(X), 1.0)  # no one waits: fsynced once GAP has passed
    deadline = time.monotonic() + 10
    while len(synced) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(synced) == 2


def test_a_batch_writes_parameters_attributes_and_state_in_one_append(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    storage = open_storage(f"journal:{path}")
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    appends: list[list[int]] = []
    original = storage._backend.append_logs  # type: ignore[attr-defined]

    def counted(logs: list[dict[str, object]]) -> None:
        appends.append([int(log["op_code"]) for log in logs])  # type: ignore[call-overload]
        original(logs)

    storage._backend.append_logs = counted  # type: ignore[attr-defined]
    with batch(study):
        x = trial.suggest_float("x", -4, 4)
        n = trial.suggest_int("n", 1, 8)
        trial.set_user_attr("worker", "w")
        # Reads inside the block see what was written before it; the trial object sees all.
        assert trial.params == {"x": x, "n": n} and trial.user_attrs == {"worker": "w"}
        study.tell(trial, x)
        trial2 = study.ask()  # a new trial is not deferred: its number is read back at once
        trial2.set_user_attr("worker", "v")
    assert [len(ops) for ops in appends] == [4, 1, 1], "params + attr + state, then ask, attr"
    stock = optuna.load_study(
        study_name="s", storage=JournalStorage(JournalFileBackend(str(path)))
    )
    first = stock.trials[0]
    assert first.params == {"x": x, "n": n} and first.user_attrs == {"worker": "w"}
    assert first.value == x and stock.trials[1].user_attrs == {"worker": "v"}


def test_an_error_in_a_batched_write_surfaces_at_the_end_of_the_block(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{tmp_path}/j.log"))
    study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), 0.0)
    trial = study.ask()
    with pytest.raises(ValueError), batch(study):  # "x" was a float, now categorical
        trial.suggest_categorical("x", ["a", "b"])
    study.tell(trial, state=TrialState.FAIL)  # the storage stays usable
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]


def test_reads_of_the_trial_index_equal_optunas_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay's per-study list of trials (and the WAITING index) give what Optuna's
    scan of every trial gives, for every filter, with two studies and a second process
    writing to the same file."""
    import random

    # Every read looks at the file: else the two reads compared may fall on either side
    # of a FRESH window's end and see different records of the other writer.
    monkeypatch.setattr(journal_file, "FRESH", 0.0)

    path = tmp_path / "journal.log"
    storage = open_storage(f"journal:{path}")
    assert isinstance(storage, CampaignJournalStorage)
    one = optuna.create_study(study_name="one", storage=storage)
    other = optuna.load_study(study_name="one", storage=open_storage(f"journal:{path}"))
    two = optuna.create_study(study_name="two", storage=storage)
    rng = random.Random(2)
    running: list[optuna.Trial] = []
    filters = [
        None,
        (TrialState.WAITING,),
        (TrialState.RUNNING,),
        (TrialState.COMPLETE, TrialState.PRUNED),
        [TrialState.FAIL],
    ]
    for step in range(150):
        study = rng.choice([one, other, two])
        action = rng.random()
        if action < 0.15:
            study.enqueue_trial({"x": rng.uniform(-4, 4)})
        elif action < 0.6 or not running:
            running.append(study.ask(X))
        else:
            trial = running.pop(rng.randrange(len(running)))
            trial.set_user_attr("step", step)
            state = rng.choice([TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL])
            value = trial.params["x"] if state == TrialState.COMPLETE else None
            trial.study.tell(trial, value, state=state)
        for study_id in (one._study_id, two._study_id):
            for states in filters:
                fast = storage.get_all_trials(study_id, deepcopy=False, states=states)
                slow = JournalStorage.get_all_trials(storage, study_id, False, states)
                assert fast == slow
                assert [t.number for t in fast] == [t.number for t in slow]
    assert one.get_trials() == JournalStorage.get_all_trials(storage, one._study_id)
    with pytest.raises(KeyError):
        storage.get_all_trials(9)


def stats_of(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The journal module's stats of ``path`` from now on (its looks at the file's size)."""
    looks: list[str] = []
    real_stat = os.stat

    def stat(target: object, *args: object, **kwargs: object) -> os.stat_result:
        if str(target) == str(path):
            looks.append("stat")
        return real_stat(target, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(journal_file.os, "stat", stat)
    return looks


def test_own_appends_are_not_read_back_and_another_writers_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What this process appended is applied from memory; a file that grew by another
    process's records as well is read, and both views equal a stock reader's."""
    path = tmp_path / "journal.log"
    one = optuna.create_study(study_name="s", storage=open_storage(f"journal:{path}"))
    two = optuna.load_study(study_name="s", storage=open_storage(f"journal:{path}"))
    reads: list[int] = []
    original = JournalFileBackend.read_logs

    def counted(self: JournalFileBackend, log_number_from: int) -> object:
        reads.append(log_number_from)
        return original(self, log_number_from)

    monkeypatch.setattr(JournalFileBackend, "read_logs", counted)
    for x in (1.0, 2.0):
        trial = one.ask(X)
        trial.set_user_attr("worker", "w")
        one.tell(trial, x)
    assert reads == [], "the only writer reads nothing back"
    two.tell(two.ask(X), 3.0)  # the other storage reads one's records from the file
    assert reads != []
    reads.clear()
    trial = one.ask(X)  # the file grew by two's records, then by this ask: read it
    one.tell(trial, 4.0)
    assert len(reads) == 1
    stock = optuna.load_study(
        study_name="s", storage=JournalStorage(JournalFileBackend(str(path)))
    )
    time.sleep(FRESH)  # two looked at the file less than FRESH ago: one's last trial waits
    for study in (one, two):
        assert [t.value for t in study.trials] == [t.value for t in stock.trials]
        assert [t.params for t in study.trials] == [t.params for t in stock.trials]
    assert [t.value for t in stock.trials] == [1.0, 2.0, 3.0, 4.0]


def test_reads_look_at_the_file_at_most_every_fresh_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """About twenty storage reads per trial: one look at the file's size serves those
    within FRESH seconds; what this process appended is applied without a look, also
    when another writer appended before it (its records come with the next look)."""
    path = tmp_path / "journal.log"
    one = optuna.create_study(study_name="s", storage=open_storage(f"journal:{path}"))
    two = optuna.load_study(study_name="s", storage=open_storage(f"journal:{path}"))
    looks = stats_of(path, monkeypatch)
    monkeypatch.setattr(journal_file, "FRESH", 0.0)
    one.trials  # noqa: B018  a look
    assert len(looks) == 1
    monkeypatch.setattr(journal_file, "FRESH", 3600.0)  # no look expires from now on
    for x in (1.0, 2.0):
        trial = one.ask(X)
        trial.set_user_attr("worker", "w")
        one.tell(trial, x)
        assert [t.value for t in one.trials][-1] == x
    assert len(looks) == 1, "own appends and reads within FRESH: no look"
    two.tell(two.ask(X), 3.0)  # two's append lands after one's: two reads them all
    assert [t.value for t in two.trials] == [1.0, 2.0, 3.0]
    one.tell(one.ask(X), 4.0)  # after two's record: one reads the file at its append
    assert [t.value for t in one.trials] == [1.0, 2.0, 3.0, 4.0]
    assert [t.value for t in two.trials] == [1.0, 2.0, 3.0], "two's look is still fresh"
    monkeypatch.setattr(journal_file, "FRESH", 0.0)
    assert [t.value for t in two.trials] == [1.0, 2.0, 3.0, 4.0]
    stock = optuna.load_study(
        study_name="s", storage=JournalStorage(JournalFileBackend(str(path)))
    )
    assert [t.number for t in one.trials] == [t.number for t in stock.trials]


def test_an_append_that_found_the_file_as_read_is_a_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver appends more often than every FRESH seconds: the reads after its append
    need no stat of their own (the append's fstat saw the file's end), until FRESH after
    it; another writer's records still come with the next look."""
    path = tmp_path / "journal.log"
    one = optuna.create_study(study_name="s", storage=open_storage(f"journal:{path}"))
    two = optuna.load_study(study_name="s", storage=open_storage(f"journal:{path}"))
    clock = [time.monotonic() + 3600]  # after every real look
    monkeypatch.setattr(journal_file, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    looks = stats_of(path, monkeypatch)
    one.trials  # noqa: B018  a look
    for x in (1.0, 2.0, 3.0):
        clock[0] += 0.9 * FRESH
        trial = one.ask(X)  # its append found the file as last read
        clock[0] += 0.2 * FRESH  # FRESH after the last stat, not after the append
        one.tell(trial, x)
        assert [t.value for t in one.trials][-1] == x
    assert len(looks) == 1, "each append was a look: the reads after it need none"
    two.tell(two.ask(X), 4.0)
    looks.clear()  # two's own
    assert [t.value for t in one.trials] == [1.0, 2.0, 3.0], "still fresh"
    clock[0] += 2 * FRESH
    assert [t.value for t in one.trials] == [1.0, 2.0, 3.0, 4.0]
    assert looks, "FRESH after its last look: one looks again"


def test_a_results_epochs_go_with_its_state_in_one_append(tmp_path: Path) -> None:
    """Intermediate values reported inside a batch wait for the trial's state; telling
    it pruned still reads the last of them as its value."""
    path = tmp_path / "journal.log"
    storage = open_storage(f"journal:{path}")
    study = optuna.create_study(study_name="s", storage=storage)
    done, pruned = study.ask(X), study.ask(X)
    appends: list[int] = []
    original = storage._backend.append_logs  # type: ignore[attr-defined]
    storage._backend.append_logs = lambda logs: (appends.append(len(logs)), original(logs))[1]  # type: ignore[attr-defined]
    with batch(study):
        for epoch in range(3):
            done.report(10.0 - epoch, epoch)
        done.set_user_attr("duration_s", 1.0)
        study.tell(done, 7.0)
    with batch(study):
        pruned.report(5.0, 0)
        pruned.report(4.5, 1)
        study.tell(pruned, state=TrialState.PRUNED)
    assert appends == [5, 3], "three epochs, an attribute and the state; two epochs, state"
    stock = optuna.load_study(
        study_name="s", storage=JournalStorage(JournalFileBackend(str(path)))
    )
    first, second = stock.trials
    assert first.intermediate_values == {0: 10.0, 1: 9.0, 2: 8.0} and first.value == 7.0
    assert second.state == TrialState.PRUNED and second.value == 4.5
    assert second.intermediate_values == {0: 5.0, 1: 4.5}


def test_a_failed_fsync_stops_the_next_write_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync runs off the writer's thread; its error is not lost: the next write (or a
    flush) raises it as a StorageError naming the journal."""
    from supervisor.study.journal_file import StorageError

    path = tmp_path / "journal.log"
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{path}"))
    flush(study)

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    study.tell(study.ask(X), 1.0)  # a durable record: fsynced in the background
    with pytest.raises(StorageError, match=r"journal\.log: No space left on device"):
        flush(study)
    with pytest.raises(StorageError, match="No space left on device"):
        study.ask(X)


def test_a_process_that_exits_waits_for_its_fsyncs(tmp_path: Path) -> None:
    """A short command (one tell, then exit) still has its result fsynced: the exit
    waits for the background fsync."""
    import subprocess
    import sys
    import textwrap

    marker = tmp_path / "fsynced"
    code = textwrap.dedent(
        f"""
        import os, optuna, time
        real = os.fsync
        def slow(fd):
            time.sleep(0.5)  # longer than the rest of the process takes to exit
            real(fd)
            open({str(marker)!r}, "a").write("x")
        os.fsync = slow
        from supervisor.study.storage import open_storage
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(storage=open_storage("journal:{tmp_path}/j.log"))
        study.tell(study.ask(), 1.0)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert marker.exists() and marker.read_text().startswith("x")


def test_an_append_keeps_the_file_open_and_removes_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each system call of the driver's thread is a chance for the Dask client's thread
    to take the interpreter lock: an append makes four (lock, fstat, write, unlock), the
    file opened once."""
    path = tmp_path / "journal.log"
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{path}"))
    calls: list[str] = []
    main = threading.current_thread()  # not the fsync thread's calls

    def counted(name: str) -> Callable[..., Any]:
        real = getattr(os, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is main:
                calls.append(name)
            return real(*args, **kwargs)

        return call

    for name in ("open", "close", "rename", "symlink", "unlink", "fstat", "write"):
        monkeypatch.setattr(os, name, counted(name))
    for x in (1.0, 2.0, 3.0):
        study.tell(study.ask(X), x)
    monkeypatch.undo()
    appends = calls.count("write")
    assert appends == 9  # each trial: its creation, its parameter, its state
    assert calls.count("symlink") == calls.count("unlink") == calls.count("fstat") == appends
    assert len(calls) == 4 * appends, calls  # no open, close or rename: the file stays open
    assert lines(path) == 1 + appends  # the study's creation, then these


def test_appends_follow_the_file_at_the_path_and_share_optunas_lock(tmp_path: Path) -> None:
    """A journal replaced under a running driver (restored from a copy) gets the next
    records, as when every append opened it; a stock Optuna writer on the same file
    takes turns with this one through the same lock file."""
    path = tmp_path / "journal.log"
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{path}"))
    study.tell(study.ask(X), 1.0)
    copy = tmp_path / "copy.log"
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)  # a new file at the path; the old one is unlinked
    study.tell(study.ask(X), 2.0)
    stock = optuna.load_study(
        study_name="s", storage=JournalStorage(JournalFileBackend(str(path)))
    )
    assert [t.value for t in stock.trials] == [1.0, 2.0]
    stock.tell(stock.ask(X), 3.0)  # Optuna's own lock and append
    study.tell(study.ask(X), 4.0)
    assert not os.path.exists(f"{path}.lock")
    again = optuna.load_study(
        study_name="s", storage=JournalStorage(JournalFileBackend(str(path)))
    )
    assert [t.value for t in again.trials] == [1.0, 2.0, 3.0, 4.0]


def test_a_parameter_the_first_trials_lack_is_checked_without_a_scan_of_them(
    tmp_path: Path,
) -> None:
    """A parameter added on resume, or a conditional one first taken late: Optuna's replay
    checks each record of it against the study's first trial that holds it, found by
    crossing every trial before that one; the replay keeps one holder per parameter."""
    storage = open_storage(f"journal:{tmp_path / 'journal.log'}")
    study = optuna.create_study(study_name="s", storage=storage)
    for x in range(300):  # the campaign before the resume: no "y"
        study.add_trial(optuna.trial.create_trial(params={"x": 0.0}, distributions=X, value=x))
    replay = internals.replay(storage)

    class Counted(dict[int, Any]):
        reads = 0

        def __getitem__(self, key: int) -> Any:
            Counted.reads += 1
            return super().__getitem__(key)

    replay._trials = Counted(replay._trials)  # type: ignore[attr-defined]
    for _ in range(3):
        trial = study.ask()
        before = Counted.reads
        trial.suggest_float("y", 0.0, 1.0)
        assert Counted.reads - before < 20, "each record of y read every earlier trial"
        study.tell(trial, 0.0)
    with pytest.raises(ValueError, match=r"different distribution kind"):
        study.ask().suggest_int("y", 0, 3)  # still checked against the trials holding it
    assert [t.params.get("y") is not None for t in study.trials][300:] == [True] * 3 + [False]
