"""The embedded journal storage under damage: a file cut short or corrupt is refused with
one line and never written to; a disk that fills up mid-campaign stops it with one line
and leaves the log readable, and the same command resumes once there is space again."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import optuna
import pytest

import supervisor.rundir as rundir
from supervisor.api import open_run
from supervisor.benchmarks import EpochReport, checkpoint_of
from supervisor.errors import UserError
from supervisor.study import attrs, journal_file
from supervisor.study.journal_file import check_journal
from supervisor.study.storage import load_study, open_storage
from tests import faultkit
from tests.faultkit import TOY, Tally, toy_space
from tests.toy_benchmark import ToyBenchmark

pytestmark = pytest.mark.faults


def write_journal(path: Path, trials: int = 3) -> bytes:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="toy", storage=open_storage(f"journal:{path}"))
    for i in range(trials):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(-4, 4)})
        study.tell(trial, float(i))
    return path.read_bytes()


DAMAGE = {
    # a copy or a crash cut the last record short
    "cut short": (lambda raw: raw[:-9], "storage journal cut short"),
    "a record overwritten": (
        lambda raw: raw.replace(b"\n{", b"\n#####", 1),
        ":2:1: storage journal is corrupt: not JSON",
    ),
    "not UTF-8": (lambda raw: raw[:-30] + b"\xff" + raw[-29:], "byte 0xff is not UTF-8"),
    "a last line that is not JSON": (lambda raw: raw + b"{oops\n", "is corrupt: not JSON"),
    "another file": (lambda raw: b"hello world\n" + raw, ":1:1: storage journal is corrupt"),
    "a JSON value, not a record": (lambda raw: raw + b"[1, 2]\n", "not an Optuna journal record"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_journal_is_refused_in_one_line_and_left_alone(
    tmp_path: Path, case: str
) -> None:
    space = toy_space(tmp_path, 4)
    journal = tmp_path / "runs" / "toy" / "journal.log"
    journal.parent.mkdir(parents=True)
    damage, words = DAMAGE[case]
    damaged = damage(write_journal(journal))
    journal.write_bytes(damaged)
    # The run as an earlier search left it: search opens the journal before it writes
    # the run directory, so the record must be there for `status` to find the run.
    record = rundir.RunRecord("toy", None, str(space), "supervisor search toy.yaml")
    rundir.write_record(journal.parent, record)
    run_json = (journal.parent / "run.json").read_bytes()
    with pytest.raises(UserError, match="storage journal"):
        open_storage(f"journal:{journal}", read_only=True)

    for command in (faultkit.search_args(space, "--workers", "1"), ["status", "toy"]):
        args = command if command[0] != "status" else faultkit.search_args(space)[:3] + command
        result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith(f"error: {journal}:") and words in lines[0], lines[0]
        assert "nothing was changed" in lines[0]
        assert journal.read_bytes() == damaged  # not a byte written
        assert (journal.parent / "run.json").read_bytes() == run_json
    assert sorted(p.name for p in journal.parent.iterdir()) == ["journal.log", "run.json"]
    faultkit.record(f"journal {case}: refused", 1, 0, 0, None)


def test_opening_a_large_journal_parses_its_records_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check on opening parsed every line before Optuna parsed them all again: 1.7
    of the 6.5 CPU seconds of opening a 186 MB journal. It reads the last line only;
    damage before it is found once Optuna's reading fails, and named as before."""
    journal = tmp_path / "journal.log"
    raw = write_journal(journal, trials=50)
    parsed = []
    real = journal_file.json.loads
    monkeypatch.setattr(journal_file.json, "loads", lambda s: parsed.append(s) or real(s))
    check_journal(str(journal))
    assert len(parsed) == 1  # the last line
    lines = raw.splitlines(keepends=True)
    # A record in the middle that is JSON but not a record: Optuna's replay would fail
    # on it with a KeyError.
    journal.write_bytes(b"".join([*lines[:5], b'{"trial": 3}\n', *lines[5:]]))
    with pytest.raises(UserError, match=r"journal.log:6:1: storage journal is corrupt: not an"):
        open_storage(f"journal:{journal}", read_only=True)
    journal.write_bytes(b"".join([*lines[:5], b'{"op_code": 5,\n', *lines[5:]]))
    with pytest.raises(UserError, match=r"journal.log:6:\d+: storage journal is corrupt: not"):
        open_storage(f"journal:{journal}", read_only=True)


def _half_written(tmp_path: Path) -> tuple[Path, bytes, bytes]:
    """A run whose driver is appending a record: half of it written, the lock held."""
    journal = tmp_path / "runs" / "toy" / "journal.log"
    journal.parent.mkdir(parents=True)
    *lines, record = write_journal(journal, trials=4).splitlines(keepends=True)
    raw = b"".join(lines)  # up to the fourth trial's result, which is being written
    rundir.write_record(journal.parent, rundir.RunRecord("toy", None, "toy.yaml", "search"))
    os.symlink(str(journal), f"{journal}.lock")  # as a writer holds Optuna's symlink lock
    journal.write_bytes(raw + record[:20])
    return journal, raw, record


def test_status_waits_for_the_record_a_live_search_is_writing(tmp_path: Path) -> None:
    """`supervisor status` beside a running search met a record half written (a driver's
    append is several writes on a busy file system) and said the journal was cut short,
    telling the user to truncate a live campaign's file."""
    journal, raw, record = _half_written(tmp_path)

    def finish() -> None:  # the driver's append completes, then it releases the lock
        with open(journal, "ab") as f:
            f.write(record[20:])
        os.unlink(f"{journal}.lock")

    timer = threading.Timer(1.0, finish)
    timer.start()
    try:
        status = open_run(str(journal.parent)).status()
    finally:
        timer.join()
    assert status.states == {"COMPLETE": 4}  # the fourth trial's result was waited for
    assert journal.read_bytes() == raw + record


def test_a_torn_record_under_a_stale_lock_is_refused_after_a_while(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer killed mid-append leaves its lock and a torn line: refused, not waited for
    forever."""
    journal, _, _ = _half_written(tmp_path)
    monkeypatch.setattr(journal_file, "SETTLE", 0.3)
    with pytest.raises(UserError, match=r"journal cut short.*truncate -s"):
        open_run(str(journal.parent)).status()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a disk that fills up. Needs root (mount); skipped, saying so, without."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}): needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> None:
    """Write a file until the file system under ``folder`` has no space left."""
    with open(folder / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def test_a_full_disk_stops_the_campaign_in_one_line_and_the_log_survives(
    tmp_path: Path, small_disk: Path
) -> None:
    space = toy_space(tmp_path, 40, delay=0.1, epochs=2)
    runs = small_disk / "runs"
    args = faultkit.search_args(space, "--workers", "2", "--runs-dir", str(runs))
    url = f"journal:{runs}/toy/journal.log"
    proc = subprocess.Popen(
        args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        faultkit.wait_for(url, "toy", lambda s: faultkit.finished(s) >= 5)
        fill(small_disk)
        before = (runs / "toy" / "journal.log").read_bytes()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(errors) == 1, err
    assert "No space left on device" in errors[0] and "journal.log" in errors[0], errors[0]

    journal = runs / "toy" / "journal.log"
    after = journal.read_bytes()
    assert after.startswith(before), "what was recorded before the disk filled is intact"
    check_journal(str(journal))  # every record complete: no torn line
    finished_before = faultkit.finished(load_study(url, "toy"))
    assert 5 <= finished_before < 40

    os.remove(small_disk / "filler")  # space again: the same command resumes
    result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    tally = Tally.of(load_study(url, "toy"))
    assert tally.complete == 40 and tally.lost == tally.duplicated == 0
    assert tally.states["RUNNING"] == 0
    faultkit.record("disk full mid-campaign, then rerun", 1, 0, 0, True)


def test_a_locked_sqlite_database_is_one_line_at_once(tmp_path: Path) -> None:
    """SQLite locked past its timeout (another process writing) is the file, not a
    server that comes back: a one-line error at once, not Optuna's traceback, nor two
    minutes of waiting for a connection."""
    import sqlite3
    import time

    from supervisor.study.storage import StorageError

    path = tmp_path / "x.db"
    study = optuna.create_study(
        study_name="s", storage=open_storage(f"sqlite:///{path}?timeout=0.2")
    )
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    start = time.monotonic()
    try:
        with pytest.raises(StorageError, match=r"refused .*OperationalError: database is locked"):
            study.ask()
    finally:
        other.execute("ROLLBACK")
    assert time.monotonic() - start < 10


@pytest.fixture
def closed_port() -> str:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{closed.getsockname()[1]}"


def test_a_database_away_when_a_batch_job_starts_is_waited_for_then_one_line(
    closed_port: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chained driver job starting while the database host reboots ended at once
    (exit 2): in a batch job the server is tried again for the reconnect window, saying
    so, and then it is still one line."""
    import time

    from supervisor.errors import UserError
    from supervisor.study import rdb

    monkeypatch.delenv(rdb.RECONNECT_ENV, raising=False)
    monkeypatch.setenv("PBS_JOBID", "7.server")
    monkeypatch.setattr(rdb, "RECONNECT_FOR", 2.0)
    start = time.monotonic()
    with pytest.raises(UserError) as caught:
        open_storage(f"postgresql://u:s3cret@{closed_port}/db")
    assert time.monotonic() - start >= 2.0
    line = str(caught.value)
    assert "\n" not in line and "s3cret" not in line
    assert line.startswith("cannot open storage 'postgresql://u:***@")
    assert "Connection refused" in line and line.endswith("(tried again for 2 s)")
    err = capsys.readouterr().err
    assert f"storage postgresql://u:***@{closed_port}/db: cannot reach the database" in err
    assert "trying again for up to 2 s" in err and "s3cret" not in err


def test_the_wait_s_note_needs_no_python_3_11(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README asks for Python 3.10+, which has no ``BaseException.add_note``: a
    database still away after the wait raised AttributeError there (a traceback, not the
    one line). Its note is now set as ``__notes__``, which 3.11's tracebacks show too."""
    from sqlalchemy import exc as sa

    from supervisor.study import rdb

    class Away(sa.OperationalError):  # an error of Python 3.10, where add_note is not
        def add_note(self, note: str) -> None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute 'add_note'")

    def connect() -> None:
        raise Away("connect", {}, ConnectionRefusedError("Connection refused"))

    monkeypatch.delenv(rdb.RECONNECT_ENV, raising=False)
    monkeypatch.setenv("PBS_JOBID", "7.server")
    monkeypatch.setattr(rdb, "RECONNECT_FOR", 0.6)
    with pytest.raises(Away) as caught:
        rdb.reached(connect, "postgresql://u@h/db", "postgresql://u@h/db")
    assert caught.value.__notes__ == ["(tried again for 1 s)"]


def test_a_closed_port_typed_on_a_login_node_is_one_line_at_once(
    closed_port: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Outside a batch job a closed port is more likely a typo: no wait."""
    import time

    from supervisor.errors import UserError
    from supervisor.execution.provenance import JOB_ID_VARIABLES
    from supervisor.study import rdb

    monkeypatch.delenv(rdb.RECONNECT_ENV, raising=False)
    for _, variable in JOB_ID_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    start = time.monotonic()
    with pytest.raises(UserError, match="Connection refused"):
        open_storage(f"postgresql://u@{closed_port}/db")
    assert time.monotonic() - start < 5
    assert capsys.readouterr().err == ""


class Checkpointing(ToyBenchmark):
    """The toy benchmark saving a 256 KiB checkpoint after each epoch but the last."""

    name = "toy-checkpointing"

    def fit(
        self, model: Any, data: Any, params: Mapping[str, Any], epochs: int, report: EpochReport
    ) -> dict[str, float]:
        import time

        import numpy as np

        saved = checkpoint_of(report)
        loss = (float(params["x"]) - 2.0) ** 2
        for epoch in range(epochs):
            time.sleep(0.4)  # 24 trials last long enough to fill the disk under them
            if saved is not None and saved.due(epoch, epochs):
                saved.save(epoch, [], {"w": np.zeros(32768)})
            report(epoch, {"loss": loss, "score": -loss})
        return {"loss": loss, "score": -loss}


def test_a_disk_full_under_the_trials_stops_the_campaign_and_loses_no_budget(
    tmp_path: Path, small_disk: Path
) -> None:
    """The run directory's disk fills up (a quota reached), the storage elsewhere: every
    trial's checkpoint failed with ENOSPC and was recorded as the model's failure, so the
    campaign burned its whole budget on 'No space left on device'. It stops at the first
    one (exit 1, the error in one line, the trial queued again) and resumes once there is
    space."""
    space = toy_space(tmp_path, 24, epochs=3).read_text()
    space = space.replace(TOY, "tests.study.test_storage:Checkpointing")
    space = space.replace("epochs: 3}", "epochs: 3, checkpoint_every: 1}")
    (tmp_path / "toy.yaml").write_text(space)
    runs = small_disk / "runs"
    url = f"journal:{tmp_path}/journal.log"  # elsewhere, as a database would be
    args = faultkit.search_args(
        tmp_path / "toy.yaml", "--workers", "2", "--runs-dir", str(runs), "--storage", url
    )
    proc = subprocess.Popen(
        args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        faultkit.wait_for(url, "toy", lambda s: faultkit.finished(s) >= 3)
        fill(small_disk)
        filler = small_disk / "filler"
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out + err
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], out + err
    assert "Traceback" not in err
    study = load_study(url, "toy")
    assert not [t for t in study.trials if t.user_attrs.get(attrs.FAILURE) == "model"]
    assert faultkit.finished(study) < 24

    os.remove(filler)  # space again: the same command resumes
    result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    tally = Tally.of(load_study(url, "toy"))
    assert tally.complete == 24 and tally.lost == tally.duplicated == 0
    assert not list(small_disk.glob("runs/toy/checkpoints/*/.tmp-*"))  # no half-written one
    faultkit.record("run directory's disk full under the trials, then rerun", 1, 0, 0, True)
