"""Campaigns on a real PostgreSQL: ``supervisor search --storage postgresql://...``.

Needs a server that answers at $SUPERVISOR_TEST_POSTGRES (default: the one
``tests/system/postgres.sh up`` starts); skipped, with the reason, only where none answers.
Each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.study import attrs
from supervisor.study.storage import load_study
from tests import faultkit
from tests.faultkit import Tally, kill_session, run_search, start_search, toy_space, wait_for

pytestmark = pytest.mark.postgres
SERVER = os.environ.get(
    "SUPERVISOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:55432/supervisor_test"
)


def admin_connection() -> object:
    import psycopg  # a dev dependency: its absence is an error, not a reason to skip

    try:
        return psycopg.connect(SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())[:200]
        pytest.skip(
            f"no PostgreSQL answers at {SERVER} ({reason}); run tests/system/postgres.sh up"
        )


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards."""
    import psycopg

    name = f"supervisor_{uuid.uuid4().hex[:12]}"
    conn = admin_connection()
    assert isinstance(conn, psycopg.Connection)
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield SERVER.rsplit("/", 1)[0] + f"/{name}"
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_campaign_on_postgresql_completes(tmp_path: Path, pg_url: str) -> None:
    space = toy_space(tmp_path, 8)
    result = run_search(space, "--storage", pg_url, "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Finished trials: 8 of 8 requested" in result.stdout
    assert (tmp_path / "runs" / "toy" / "journal.log").exists() is False  # it used PostgreSQL
    tally = Tally.of(load_study(pg_url, "toy"))
    assert tally.states == {"COMPLETE": 8}
    status = subprocess.run(
        [*faultkit.search_args(space)[:3], "status", "toy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0 and "finished 8 of 8" in status.stdout, status.stderr


def test_a_dry_run_and_validate_check_the_resume_on_postgresql(
    tmp_path: Path, pg_url: str
) -> None:
    """They read only a journal or SQLite file: a space the search then refused to resume
    with (x an int, its trials hold a float) was "valid". Read, nothing written."""
    space = toy_space(tmp_path, 2)
    assert run_search(space, "--storage", pg_url, "--workers", "1").returncode == 0
    toy_space(tmp_path, 4, params="  x: {type: int, low: -4, high: 4}\n")
    study = load_study(pg_url, "toy")
    before = (study.user_attrs, [(t.number, t.state, t.user_attrs) for t in study.trials])
    command = faultkit.search_args(space)[:3]
    for argv in (
        ["search", "toy.yaml", "--storage", pg_url, "--dry-run"],
        ["validate", "toy.yaml"],
    ):
        done = subprocess.run(
            [*command, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert "toy.yaml: params.x: the study's trials have it as a float" in done.stderr
    study = load_study(pg_url, "toy")
    assert (study.user_attrs, [(t.number, t.state, t.user_attrs) for t in study.trials]) == before


def test_two_drivers_share_one_study_and_split_the_work(tmp_path: Path, pg_url: str) -> None:
    budget = 24
    space = toy_space(tmp_path, budget, delay=0.1)
    first = start_search(space, "--storage", pg_url, "--workers", "1")
    second = start_search(space, "--storage", pg_url, "--workers", "1")
    outputs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, "\n".join(outputs)

    study = load_study(pg_url, "toy")
    tally = Tally.of(study)
    # A driver whose ask raced the other's for the last budget slot ends its trial unrun
    # ("surplus", not counted): exactly the budget is trained.
    surplus = [t for t in study.trials if t.user_attrs.get(attrs.FAILURE) == "surplus"]
    assert all("worker" not in t.user_attrs for t in surplus), "surplus trials never ran"
    assert tally.states - Counter({"FAIL:surplus": len(surplus)}) == {"COMPLETE": budget}
    assert tally.lost == tally.duplicated == 0
    numbers = [t.number for t in study.trials if t.state.name == "COMPLETE"]
    assert len(set(numbers)) == len(numbers) == budget
    by_driver = {str(t.user_attrs[attrs.DRIVER]) for t in study.trials}
    assert len(by_driver) == 2, "both drivers ran trials"
    faultkit.record("two drivers on one PostgreSQL study", 0, tally.lost, tally.duplicated, True)


def test_a_killed_driver_resumes_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    budget = 16
    space = toy_space(tmp_path, budget, delay=0.2)
    proc = start_search(space, "--storage", pg_url, "--workers", "2")
    try:
        wait_for(pg_url, "toy", lambda s: faultkit.finished(s) >= 4)
    finally:
        kill_session(proc)
    study = load_study(pg_url, "toy")
    zombies = [t.number for t in study.trials if t.state.name == "RUNNING"]
    assert zombies and faultkit.finished(study) < budget, "the kill landed mid-campaign"

    result = run_search(space, "--storage", pg_url, "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"closed {len(zombies)} trial(s) left running by a dead driver" in result.stdout
    tally = Tally.of(load_study(pg_url, "toy"))
    assert tally.complete == budget and tally.lost == tally.duplicated == 0
    assert tally.states["RUNNING"] == 0
    assert tally.states["FAIL:infrastructure"] == len(zombies)
    faultkit.record("kill -9 driver (PostgreSQL storage)", 1, tally.lost, tally.duplicated, True)


def _database_away(pg_url: str, away: bool) -> None:
    """Refuse (or allow again) every connection to the test's database, and drop those
    open: what a server restart or an administrator's pg_terminate_backend does to it."""
    import psycopg

    conn = admin_connection()
    assert isinstance(conn, psycopg.Connection)
    name = pg_url.rsplit("/", 1)[1]
    with conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(not away).lower()}')
        if away:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


def test_dropped_connections_are_replaced(pg_url: str) -> None:
    """An administrator terminating the campaign's connections costs nothing: the next
    call opens a new one (it failed with a traceback on the stale pooled connection)."""
    import optuna

    from supervisor.study.storage import open_storage

    study = optuna.create_study(study_name="s", storage=open_storage(pg_url))
    study.enqueue_trial({"x": 1.0})
    _database_away(pg_url, True)
    _database_away(pg_url, False)
    trial = study.ask()
    study.tell(trial, 1.0)
    assert [t.state.name for t in load_study(pg_url, "s").trials] == ["COMPLETE"]


def test_a_database_gone_for_good_is_one_line_and_exit_1(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import optuna

    from supervisor.study.rdb import RECONNECT_ENV
    from supervisor.study.storage import StorageError, open_storage

    monkeypatch.setenv(RECONNECT_ENV, "2")
    with_password = pg_url.replace("postgres@", "postgres:s3cret@")  # the server trusts all
    study = optuna.create_study(study_name="s", storage=open_storage(with_password))
    _database_away(pg_url, True)
    try:
        with pytest.raises(StorageError, match=r"did not answer for 2 s") as caught:
            study.ask()
    finally:
        _database_away(pg_url, False)
    assert caught.value.exit_code == 1 and "\n" not in str(caught.value)
    assert "run the same command again to resume" in str(caught.value)
    err = capsys.readouterr().err
    assert "trying again for up to 2 s" in err
    assert "s3cret" not in err + str(caught.value) and "postgres:***@" in str(caught.value)


def test_a_campaign_rides_out_the_database_going_away(tmp_path: Path, pg_url: str) -> None:
    """The server restarting mid-campaign (every connection dropped, none accepted for
    seconds): the driver waits for it and completes the budget, nothing lost or trained
    twice (it ended with a traceback from Optuna's RDBStorage)."""
    import time

    budget = 16
    space = toy_space(tmp_path, budget, delay=0.3)
    proc = start_search(space, "--storage", pg_url, "--workers", "2")
    try:
        wait_for(pg_url, "toy", lambda s: faultkit.finished(s) >= 3)
        _database_away(pg_url, True)
        time.sleep(6)
    finally:
        _database_away(pg_url, False)
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, output
    assert "lost the database" in output and "the database answers again" in output
    assert "Traceback" not in output
    assert f"Finished trials: {budget} of {budget} requested" in output
    tally = Tally.of(load_study(pg_url, "toy"))
    assert tally.complete == budget and tally.lost == tally.duplicated == 0
    faultkit.record("PostgreSQL away for 6 s mid-campaign", 1, tally.lost, tally.duplicated, True)


def test_a_database_that_stays_away_stops_the_run_and_it_resumes(
    tmp_path: Path, pg_url: str
) -> None:
    budget = 12
    space = toy_space(tmp_path, budget, delay=0.3)
    env = {**os.environ, "SUPERVISOR_STORAGE_RECONNECT_S": "3"}
    proc = subprocess.Popen(
        faultkit.search_args(space, "--storage", pg_url, "--workers", "2"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        wait_for(pg_url, "toy", lambda s: faultkit.finished(s) >= 2)
        _database_away(pg_url, True)
        stderr = proc.communicate(timeout=120)[1]
    finally:
        _database_away(pg_url, False)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: storage postgresql://") and "did not answer for 3 s" in last

    result = run_search(space, "--storage", pg_url, "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    tally = Tally.of(load_study(pg_url, "toy"))
    assert tally.complete == budget and tally.lost == tally.duplicated == 0
    faultkit.record(
        "PostgreSQL gone for good, then resumed", 1, tally.lost, tally.duplicated, True
    )


def test_a_database_away_when_the_driver_starts_is_waited_for(tmp_path: Path, pg_url: str) -> None:
    """A chained driver job starting while the database restarts: it ended at once with
    exit 2; it waits for the server (saying so) and runs the campaign. A database that does
    not exist is not waited for."""
    import time

    space = toy_space(tmp_path, 4)
    env = {**os.environ, "SUPERVISOR_STORAGE_RECONNECT_S": "60"}
    missing = subprocess.run(
        faultkit.search_args(space, "--storage", f"{pg_url}_none", "--workers", "2"),
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 2 and "does not exist" in missing.stderr, missing.stderr
    assert "trying again" not in missing.stderr
    _database_away(pg_url, True)
    said = tmp_path / "driver.err"
    try:
        with said.open("w") as err_file:
            proc = subprocess.Popen(
                faultkit.search_args(space, "--storage", pg_url, "--workers", "2"),
                cwd=tmp_path, stdout=subprocess.PIPE, stderr=err_file, text=True, env=env,
            )  # fmt: skip
        # The server comes back once the driver has found it away: a fixed 4 s brought it
        # back before a loaded machine's driver had started (1.4 to 3.2 s here, one busy
        # core beside it), and the driver then never waited.
        deadline = time.monotonic() + 120
        while "cannot reach the database" not in said.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, said.read_text()
            time.sleep(0.1)
        assert proc.poll() is None, said.read_text()  # it waits, it does not end
    finally:
        _database_away(pg_url, False)
    out, _ = proc.communicate(timeout=300)
    err = said.read_text()
    assert proc.returncode == 0, out + err
    assert "cannot reach the database" in err and "trying again for up to 60 s" in err
    assert "the database answers after" in err
    assert "Finished trials: 4 of 4 requested" in out


def test_a_read_only_role_is_one_line_not_a_traceback(tmp_path: Path, pg_url: str) -> None:
    """A role that may read the team's database but not write it: Optuna's
    StorageInternalError traceback ("invalid data in the commit") became one line saying
    what the database refused, exit 1, nothing written."""
    import psycopg

    role = f"reader_{uuid.uuid4().hex[:8]}"
    database = pg_url.rsplit("/", 1)[1]
    conn = admin_connection()
    assert isinstance(conn, psycopg.Connection)
    with conn:
        first = run_search(toy_space(tmp_path, 2), "--storage", pg_url)  # Optuna's tables
        assert first.returncode == 0, first.stderr
        for statement in (
            f"CREATE ROLE {role} LOGIN",
            f'GRANT CONNECT ON DATABASE "{database}" TO {role}',
        ):
            conn.execute(statement)  # type: ignore[arg-type]
        reader = pg_url.replace("postgres@", f"{role}@")
        try:
            with psycopg.connect(pg_url, autocommit=True) as db:
                db.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")  # type: ignore[arg-type]
            (tmp_path / "reader").mkdir()
            space = toy_space(tmp_path / "reader", 2, study="other")
            result = run_search(space, "--storage", reader)
        finally:
            with psycopg.connect(pg_url, autocommit=True) as db:
                db.execute(f"DROP OWNED BY {role}")  # type: ignore[arg-type]
            conn.execute(f"DROP ROLE {role}")  # type: ignore[arg-type]
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: storage {reader}: the database refused create_new_study:"
        " InsufficientPrivilege: permission denied for table studies"
    ]
    assert not (space.parent / "runs").exists()


def test_after_an_outage_live_drivers_on_other_hosts_keep_their_trials(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No driver can renew its lease while the database is away: once it is back, a
    driver taking over (it had nothing in flight) found the lease of a live driver on
    another host stale and closed its running trial, to be trained again (the live
    driver's result then thrown away). Leases are judged again a lease's time later."""
    import threading
    import time

    import optuna

    from supervisor.study import rdb, recovery
    from supervisor.study.storage import open_storage

    monkeypatch.setattr(rdb, "_answered_again", None)
    monkeypatch.setattr(recovery, "STALE_AFTER", 3.0)  # 30 s: the outage would be too
    study = optuna.create_study(study_name="s", storage=open_storage(pg_url))
    other = "login2.cluster:4242:beefcafe"  # a driver on another host, training trial 0
    trial = study.ask()
    trial.set_user_attr(attrs.DRIVER, other)
    study.set_user_attr(attrs.HEARTBEAT_PREFIX + other, time.time())
    _database_away(pg_url, True)
    threading.Timer(4.0, _database_away, (pg_url, False)).start()
    study.get_trials()  # this driver waits for the database: 4 s, past the lease
    assert recovery.recover(study).zombies == []
    assert study.trials[0].state.name == "RUNNING"

    monkeypatch.setattr(rdb, "_answered_again", None)  # a lease's time later, no renewal:
    assert recovery.recover(study).zombies == [0]  # that driver is dead after all


def test_two_drivers_starting_one_warm_start_together_on_postgresql(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check of what a warm start added and its writes are one step under a lock of
    the study (an advisory lock): each source trial is added once."""
    from tests.study.test_warm_start_resume import race_two_warm_starts

    race_two_warm_starts(tmp_path, monkeypatch, pg_url)
