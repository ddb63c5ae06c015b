"""The run directory of a campaign: where its embedded storage and records live.

``runs/<study>/`` holds ``journal.log`` (the default Optuna storage) and ``run.json``
(how to find the study again: its name and storage URL), per-trial files under
``trials/`` and the epoch checkpoints of unfinished trials under ``checkpoints/``.
Reports go to ``reports/``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import supervisor.atomic as atomic
from supervisor.errors import UserError

RUN_FILE = "run.json"
SPACE_FILE = "space.yaml"  # the space of a run started from Python with a mapping
JOURNAL_FILE = "journal.log"
TRIALS_DIR = "trials"
CHECKPOINTS_DIR = "checkpoints"
ARTIFACTS_FILE = "artifacts.npz"
OUTPUTS_FILE = "outputs.npz"  # an ensemble member's predictions (supervisor.ensemble)
ENSEMBLE_DIR = "ensemble"  # the run directory of the members trained for an ensemble


@dataclass
class RunRecord:
    study: str
    storage: str | None  # None: the journal file in the run directory
    space_file: str
    command: str

    def storage_url(self, run_dir: Path) -> str:
        return self.storage or journal_url(run_dir)


def journal_url(run_dir: Path) -> str:
    return f"journal:{(run_dir / JOURNAL_FILE).resolve()}"


def trial_dir(run_dir: Path, number: int) -> Path:
    """Where one trial's files live (artifacts, checkpoints): ``trials/000042/``."""
    return run_dir / TRIALS_DIR / f"{number:06d}"


def checkpoint_dir(run_dir: Path, key: int) -> Path:
    """Epoch checkpoints of a trial and its re-runs: ``checkpoints/000042/``, keyed by the
    first trial of the retry chain so that every attempt finds the same directory."""
    return run_dir / CHECKPOINTS_DIR / f"{key:06d}"


def write_record(run_dir: Path, record: RunRecord) -> None:
    # Private: a --storage URL may hold a database password (resuming needs it).
    atomic.write(run_dir / RUN_FILE, json.dumps(asdict(record), indent=2) + "\n", mode=0o600)


def resolve(run: str, runs_root: Path = Path("runs")) -> tuple[Path, RunRecord]:
    """A run given as a directory or as a study name under ``runs_root``."""
    for candidate in (Path(run), runs_root / run):
        record_path = candidate / RUN_FILE
        if record_path.is_file():
            try:
                data: dict[str, Any] = json.loads(record_path.read_text())
                return candidate, RunRecord(**data)
            except (ValueError, TypeError) as exc:
                raise UserError(f"{record_path}: not a valid run record ({exc})") from None
    raise UserError(
        f"{run}: no run found (expected a run directory with {RUN_FILE}, or a study name"
        f" under {runs_root}/)"
    )


def read_record(run_dir: Path) -> RunRecord:
    """The record of the run in ``run_dir``."""
    return resolve(str(run_dir), run_dir.parent)[1]
