"""What each record of a campaign's journal costs: it is kept for the campaign's life and
read again by every command that opens it."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import optuna

from supervisor.study.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _records(journal: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in journal.read_text().splitlines()]


def test_each_record_names_its_writer_in_a_few_bytes(tmp_path: Path) -> None:
    """Every record named its writer by Optuna's full UUID and thread ident: 52 of the
    143 bytes of an epoch's intermediate value, a sixth of a campaign's journal."""
    journal = tmp_path / "journal.log"
    storage = open_storage(f"journal:{journal}")
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    for step in range(10):
        trial.report(1.0 / (step + 1), step)
    study.tell(trial, 0.1)
    records = _records(journal)
    writers = {str(r["worker_id"]) for r in records}
    assert all(len(w) <= 20 for w in writers), writers
    line = next(x for x in journal.read_text().splitlines() if '"op_code":7' in x)
    assert len(line) <= 110, line
    # Another process's storage (sent pickled) names itself otherwise, and its own trial
    # is its own: it asks, and tells it.
    other = pickle.loads(pickle.dumps(storage))
    theirs = optuna.load_study(study_name="s", storage=other)
    second = theirs.ask()
    theirs.tell(second, 0.2)
    new = {str(r["worker_id"]) for r in _records(journal)[len(records) :]}
    assert new and not new & writers
    assert len(new) == 1 and next(iter(new)).split("-")[0] not in {
        w.split("-")[0] for w in writers
    }
    again = optuna.load_study(study_name="s", storage=open_storage(f"journal:{journal}"))
    assert [t.value for t in again.get_trials()] == [0.1, 0.2]
