"""Opening a long campaign's journal reads what was appended since its snapshot: the
study read is the one a whole replay gives, and a snapshot that does not certainly belong
to the journal (replaced, rewritten, someone else's, another format) is never used."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

import optuna
import pytest

import supervisor
import supervisor.optuna_internals as internals
from supervisor.study import journal_snapshot
from supervisor.study.storage import load_study, open_storage
from tests.commands.test_export_model import run_cli
from tests.study.test_space_change import _space

X = optuna.distributions.FloatDistribution(-4, 4)
N = optuna.distributions.IntDistribution(1, 64, log=True)
X_SPACE = {"type": "float", "low": -4, "high": 4}


@pytest.fixture(autouse=True)
def _save_small_journals(monkeypatch: pytest.MonkeyPatch) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    monkeypatch.setattr(journal_snapshot, "SAVE_AFTER", 1)


def add_trials(journal: Path, count: int, start: int = 0) -> None:
    storage = open_storage(f"journal:{journal}")
    study = optuna.create_study(study_name="toy", storage=storage, load_if_exists=True)
    for i in range(start, start + count):
        trial = study.ask({"x": X, "n": N})
        trial.set_user_attr("metrics", {"loss": i / 10})
        trial.report(float(i), step=1)
        if i % 3 == 2:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, float(i))
    study.enqueue_trial({"x": 0.5, "n": 2})  # a WAITING trial: the replay's index of them
    open_storage(f"journal:{journal}").save_snapshot()  # type: ignore[attr-defined]


def read(journal: Path) -> list[Any]:
    """What ``status`` reads."""
    storage = load_study(f"journal:{journal}", "toy")._storage
    trials = storage.get_all_trials(storage.get_study_id_from_name("toy"), deepcopy=False)
    waiting = storage.get_all_trials(
        storage.get_study_id_from_name("toy"), states=(optuna.trial.TrialState.WAITING,)
    )
    return [
        (t.number, t.state, t.params, t.values, t.user_attrs, t.intermediate_values)
        for t in trials
    ] + [[t.number for t in waiting]]


def records(journal: Path) -> int:
    return journal.read_bytes().count(b"\n")


def replayed(journal: Path) -> int:
    """How many of the journal's records opening it reads."""
    storage = open_storage(f"journal:{journal}", read_only=True)
    return len(internals.line_offsets(internals.backend(storage))) - 1


def whole(journal: Path) -> list[Any]:
    """What a replay of the whole journal reads."""
    snapshot = journal_snapshot.path_of(str(journal))
    kept = snapshot.read_bytes() if snapshot.exists() else None
    snapshot.unlink(missing_ok=True)
    try:
        return read(journal)
    finally:
        if kept is not None:
            snapshot.write_bytes(kept)
            os.chmod(snapshot, 0o600)


def test_a_journal_opened_from_its_snapshot_reads_as_a_whole_replay(tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"
    add_trials(journal, 8)
    snapshot = journal_snapshot.path_of(str(journal))
    assert snapshot.exists() and snapshot.stat().st_mode & 0o777 == 0o600
    add_trials(journal, 5, start=8)  # opened from the snapshot, then written to
    expected = whole(journal)
    assert len(expected[-1]) == 1  # the first enqueued was asked, the second waits
    assert read(journal) == expected

    assert replayed(journal) < records(journal) / 2  # only what follows the snapshot


def test_new_trials_after_a_snapshot_are_numbered_after_the_old(tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"
    add_trials(journal, 4)
    add_trials(journal, 4, start=4)
    numbers = [row[0] for row in read(journal)[:-1]]
    assert numbers == list(range(len(numbers)))


def rewrite(journal: Path) -> None:
    """The journal replaced by another campaign's of the same size or more."""
    raw = journal.read_bytes()
    other = journal.with_name("other.log")
    add_trials(other, 10)
    journal.write_bytes(other.read_bytes())
    assert len(journal.read_bytes()) >= len(raw)


@pytest.mark.parametrize(
    "change",
    [
        "journal rewritten",
        "journal truncated",
        "group may write the snapshot",
        "another format",
        "damaged snapshot",
    ],
)
def test_a_snapshot_that_may_not_be_this_journals_is_not_used(tmp_path: Path, change: str) -> None:
    journal = tmp_path / "journal.log"
    add_trials(journal, 6)
    snapshot = journal_snapshot.path_of(str(journal))
    if change == "journal rewritten":
        saved = snapshot.read_bytes()
        rewrite(journal)
        snapshot.write_bytes(saved)
    elif change == "journal truncated":
        lines = journal.read_bytes().splitlines(keepends=True)
        journal.write_bytes(b"".join(lines[: len(lines) // 2]))
    elif change == "group may write the snapshot":
        os.chmod(snapshot, 0o620)
    elif change == "another format":
        header, rest = snapshot.read_bytes().split(b"\n", 1)
        ours = f'"format": {journal_snapshot.FORMAT}'.encode()
        assert ours in header
        snapshot.write_bytes(header.replace(ours, b'"format": 0') + b"\n" + rest)
    else:
        snapshot.write_bytes(snapshot.read_bytes()[:-100])
    os.chmod(snapshot, 0o620 if "group" in change else 0o600)
    assert replayed(journal) == records(journal)
    assert read(journal) == whole(journal)


def test_a_save_that_fails_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "journal.log"
    add_trials(journal, 3)
    journal_snapshot.path_of(str(journal)).unlink()

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal_snapshot.pickle, "dump", full)
    storage = open_storage(f"journal:{journal}")
    journal_snapshot.save_opened()
    assert storage.get_all_studies()[0].study_name == "toy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.log"]


def test_a_command_that_succeeds_saves_one_that_refuses_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    supervisor.search(_space({"x": X_SPACE}, 3), workers=1, progress="none")
    journal = tmp_path / "runs" / "api-toy" / "journal.log"
    snapshot = journal_snapshot.path_of(str(journal))
    snapshot.unlink()
    code, _, err = run_cli("export", "api-toy", "--model", "99", monkeypatch=monkeypatch,
                           capsys=capsys)  # fmt: skip
    assert code == 2, err
    assert not snapshot.exists()
    code, out, err = run_cli("status", "api-toy", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and "finished 3 of 3" in out, err
    assert snapshot.exists()
    assert replayed(journal) < records(journal)


def test_a_command_saves_the_snapshot_of_a_study_it_has_let_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status` lets its study go before the CLI saves the snapshot; on a long journal the
    collector had always run by then, and `status` and `report` left none: each look at a
    38,000-trial campaign replayed its journal whole (4 s of CPU)."""
    from supervisor.perf.report_scale import make_campaign

    monkeypatch.setattr(journal_snapshot, "HELD", None, raising=False)  # a fresh process
    run_dir = tmp_path / "runs" / "scale"
    make_campaign(run_dir, 30)  # as `supervisor search` leaves it
    journal = run_dir / "journal.log"
    gc.collect()
    opened = [internals.file_path(internals.backend(s)) for s in journal_snapshot.OPENED]
    assert str(journal) not in opened  # its writer's, which would save it
    save = journal_snapshot.save_opened

    def collected_first() -> None:
        gc.collect()
        save()

    monkeypatch.setattr(journal_snapshot, "save_opened", collected_first)
    code, out, err = run_cli("status", str(run_dir), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and "finished 26 of 80" in out, err
    assert journal_snapshot.path_of(str(journal)).exists()
    assert replayed(journal) < records(journal)


def test_a_campaign_saves_a_snapshot_once_its_checks_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume refused (its space changes a parameter) writes nothing, not even the
    cache; one that goes on leaves the snapshot, which the next command reads."""
    monkeypatch.chdir(tmp_path)
    x = X_SPACE
    supervisor.search(_space({"x": x, "c": ["a", "b"]}, 2), workers=1, progress="none")
    run_dir = tmp_path / "runs" / "api-toy"
    before = {p: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(supervisor.UserError, match=r"params\.c"):
        supervisor.search(_space({"x": x, "c": x}, 4), workers=1, progress="none")
    assert {p: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before

    supervisor.search(_space({"x": x, "c": ["a", "b"]}, 4), workers=1, progress="none")
    journal = run_dir / "journal.log"
    assert journal_snapshot.path_of(str(journal)).exists()
    assert replayed(journal) < records(journal)
    assert len(supervisor.open_run("api-toy").trials) == 4
