"""Which trained models a campaign keeps (``keep_models: K``): those of its K best trials.

A worker saves a complete trial's model (``rundir.MODEL_FILE`` in the trial's directory)
when it is at least as good as the worst one kept when the trial was sent
(``KeepModel.bar``; with several objectives, unless each of the K kept dominates it: such
a trial never ranks among the K best, whatever arrives later); the driver then keeps
the K best and removes the others' files as better ones arrive, so the disk holds about K
models (plus those of trials in flight), never one per trial. Best: by the value of one
objective; with several, by Pareto rank (the non-dominated first), then by the first
objective, except in a campaign that builds an ensemble: by the first objective alone,
as the ensemble takes its members (so that ``keep_models`` of its pool keeps every
member). Ties go to the earlier trial.

A resume reads which files exist and what the study says of their trials, once recovery
has closed the trials of drivers that died: a file of a trial that did not complete (its
result was lost, the trial re-ran) is removed; that of a trial still running is another
driver's, saved by its worker and not yet recorded, and stays. Several drivers of one
campaign each trim what they know; a trial among the K best is never removed by any of
them, and any surplus goes at the next start.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import supervisor.rundir as rundir
from supervisor.execution.trial import KeepModel
from supervisor.execution.trial import dominates as _dominates
from supervisor.study import attrs

if TYPE_CHECKING:
    import numpy as np
    import optuna
    from optuna.trial import FrozenTrial


class KeptModels:
    def __init__(
        self,
        run_dir: Path,
        keep: int,
        directions: Sequence[str],
        first_only: bool = False,
        bounds: tuple[tuple[str, float | None, float | None], ...] = (),
    ) -> None:
        import numpy as np

        self.run_dir = run_dir
        self.keep = keep
        self.bounds = bounds  # the constraints a worker checks before it saves (KeepModel)
        self.signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
        # Ranked by the first objective alone, whatever the others (an ensemble's order).
        self.pareto = len(directions) > 1 and not first_only
        self.losses: dict[int, np.ndarray] = {}  # trial number -> values, lower is better

    def load(self, study: optuna.Study) -> list[str]:
        """Take the models saved in the run directory, as the study says of their trials;
        remove the files of trials that ended without completing and the surplus. Returns
        a line for each kept file that cannot be read (``damaged``): it no longer counts
        among the K, so that a later trial's model takes its place."""
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        saved = _saved_of(self.run_dir, trials)
        if not saved:
            return []
        self.losses = self._complete(trials, saved)
        notes, unread = [], set()
        for number in sorted(self.losses):
            why = damaged(self.run_dir, number)
            if why is not None:
                del self.losses[number]
                unread.add(number)
                notes += [why] if why else []
        # A live driver's trial whose worker saved its model before that driver recorded
        # its result: that driver keeps it (it may be the best).
        running = (TrialState.RUNNING, TrialState.WAITING)
        busy = {t.number for t in trials if t.state in running}
        for number in saved:
            if number not in self.losses and number not in busy and number not in unread:
                remove_trial_file(self.run_dir, number)
        self._trim()
        return notes

    def _complete(
        self, trials: Sequence[FrozenTrial], numbers: list[int] | None
    ) -> dict[int, np.ndarray]:
        """The losses of those of ``numbers`` (None: any) that are complete ``trials``
        keeping its constraints (a trial that breaks them never is among the best) whose
        workers saved their models: a file of another trial's (a study started again in the
        same run directory) is not theirs."""
        import numpy as np
        from optuna.trial import TrialState

        from supervisor.study.feasibility import feasible

        wanted = set(numbers) if numbers is not None else None
        return {
            t.number: self.signs * np.asarray(t.values, float)
            for t in trials
            if (wanted is None or t.number in wanted)
            and t.state == TrialState.COMPLETE
            and t.values is not None
            and feasible(t)
            and t.user_attrs.get(attrs.MODEL)
        }

    def next_trial(self) -> KeepModel:
        """What the next trial sent must beat to have its model saved."""
        if len(self.losses) < self.keep:
            return KeepModel(bounds=self.bounds)
        if self.pareto:  # no single bar: the K kept, which every trial not written trails
            kept = tuple(tuple(map(float, loss)) for loss in self.losses.values())
            return KeepModel(bounds=self.bounds, kept=kept, signs=tuple(map(float, self.signs)))
        worst = max(float(loss[0]) for loss in self.losses.values())
        sign = float(self.signs[0])
        return KeepModel(bar=worst * sign, maximize=sign < 0, bounds=self.bounds)

    def add(self, number: int, values: Sequence[float]) -> None:
        """Trial ``number`` completed with ``values`` and its model was saved."""
        import numpy as np

        self.losses[number] = self.signs * np.asarray(values, float)
        self._trim()

    def drop(self, number: int) -> None:
        """Trial ``number``'s model may have been saved but is not to be kept (it breaks
        the space file's constraints, or its result was lost and it runs again)."""
        self.losses.pop(number, None)
        remove_trial_file(self.run_dir, number)

    def numbers(self) -> list[int]:
        """The trials whose models are kept, best first."""
        return self._ranked()

    def _ranked(self) -> list[int]:
        import numpy as np

        numbers = list(self.losses)
        if not numbers:
            return []
        losses = np.array([self.losses[n] for n in numbers])
        ranks = pareto_ranks(losses) if self.pareto else np.zeros(len(numbers))
        order = sorted(range(len(numbers)), key=lambda i: (ranks[i], losses[i, 0], numbers[i]))
        return [numbers[i] for i in order]

    def _trim(self) -> None:
        if len(self.losses) <= self.keep:
            return
        for number in self._ranked()[self.keep :]:
            del self.losses[number]
            remove_trial_file(self.run_dir, number)


def kept_in(study: optuna.Study, run_dir: Path) -> list[int]:
    """The complete trials of ``study`` whose models ``run_dir`` holds, best first; reads
    only (a campaign's driver trims them)."""
    directions = [d.name.lower() for d in study.directions]
    config = study.user_attrs.get(attrs.CONFIG)
    return kept_of(study.get_trials(deepcopy=False), directions, run_dir, keep_of(config))


def keep_of(config: object) -> int | None:
    """``keep_models`` of a study's stored configuration; None where unknown or 0."""
    keep = config.get("keep_models") if isinstance(config, dict) else None
    return keep if isinstance(keep, int) and not isinstance(keep, bool) and keep > 0 else None


def kept_of(
    trials: Sequence[FrozenTrial],
    directions: Sequence[str],
    run_dir: Path,
    keep: int | None = None,
) -> list[int]:
    """``kept_in`` of a study's ``trials`` read already (the report's). Looks only for the
    files of the trials that recorded a saved model, best first, and with ``keep`` (the
    campaign's K) stops at the K best found: a listing of the trials folder stat'ed each of
    its 100,000 folders (artifacts) on every look of `status --watch`, on a parallel file
    system a metadata storm of minutes."""
    kept = KeptModels(run_dir, 0, directions)
    candidates = kept._complete(trials, None)
    for number in _best_first(candidates, kept.pareto):
        if (rundir.trial_dir(run_dir, number) / rundir.MODEL_FILE).exists():
            kept.losses[number] = candidates[number]
            if keep is not None and len(kept.losses) >= keep:
                break  # the driver removes any other, worse, as surplus
    return kept.numbers()  # ranked among themselves, as the driver ranks them


def _best_first(losses: dict[int, np.ndarray], pareto: bool) -> Iterator[int]:
    """The trials of ``losses`` by (Pareto front, first objective, number), front by front
    as asked for: ``pareto_ranks`` of every candidate at once takes memory quadratic in
    them (the complete trials of a campaign that saved each one's model)."""
    if not pareto:
        yield from sorted(losses, key=lambda n: (float(losses[n][0]), n))
        return
    # In this order a trial's dominators all come before it; one dominated by a trial
    # left for a later front is dominated by that one's dominator in this front too.
    left = sorted(losses, key=lambda n: (tuple(map(float, losses[n])), n))
    while left:
        front: list[tuple[float, ...]] = []
        numbers, rest = [], []
        for number in left:
            loss = tuple(map(float, losses[number]))
            if any(_dominates(other, loss) for other in front):
                rest.append(number)
            else:
                front.append(loss)
                numbers.append(number)
        yield from sorted(numbers, key=lambda n: (float(losses[n][0]), n))
        left = rest


def pareto_ranks(losses: np.ndarray) -> np.ndarray:
    """Each row's non-domination rank (0: on the Pareto front) of ``losses`` (lower is
    better in every column); one column: all 0, the values order them."""
    import numpy as np

    n = len(losses)
    ranks = np.zeros(n, dtype=int)
    if losses.shape[1] < 2:
        return ranks
    # dominates[i, j]: row i is no worse than row j everywhere and better somewhere
    le = (losses[:, None, :] <= losses[None, :, :]).all(axis=2)
    lt = (losses[:, None, :] < losses[None, :, :]).any(axis=2)
    dominates = np.asarray(le & lt)
    left = np.ones(n, dtype=bool)
    rank = 0
    while left.any():
        front = left & ~_dominated(dominates, left)
        ranks[front] = rank
        left &= ~front
        rank += 1
    return ranks


def _dominated(dominates: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Rows dominated by some row still ``left``."""
    return (dominates & left[:, None]).any(axis=0)


def _saved_of(run_dir: Path, trials: Sequence[FrozenTrial]) -> list[int]:
    """``saved_models`` where one may be: the folder of a trial that completed without
    saving one (its artifacts' only) is not looked into, at 100,000 trials as many stats
    of a parallel file system's metadata server on every start. Any other (a trial that
    did not complete, or not of this study) is, as its file may be to remove."""
    from optuna.trial import TrialState

    without = {
        t.number
        for t in trials
        if t.state == TrialState.COMPLETE and not t.user_attrs.get(attrs.MODEL)
    }
    folder = run_dir / rundir.TRIALS_DIR
    try:
        names = os.listdir(folder)  # names only: no stat per entry
    except OSError:
        return []
    return sorted(
        int(name)
        for name in names
        if name.isdigit()
        and int(name) not in without
        and os.path.exists(os.path.join(folder, name, rundir.MODEL_FILE))
    )


def saved_models(run_dir: Path) -> list[int]:
    """The trials with a model file in ``run_dir`` (one listing of the trials folder)."""
    found = []
    try:
        entries = list(os.scandir(run_dir / rundir.TRIALS_DIR))
    except OSError:
        return []
    for entry in entries:
        if entry.name.isdigit() and os.path.exists(os.path.join(entry.path, rundir.MODEL_FILE)):
            found.append(int(entry.name))
    return sorted(found)


def damaged(run_dir: Path, number: int) -> str | None:
    """Why trial ``number``'s kept model file cannot be loaded ("" where it is gone), else
    None. Reads only the zip's directory (at the file's end: a file cut short by a node's
    crash fails), not the arrays, as a resume checks every kept file. One whose content is
    not a model (cut short, empty) is removed, else the run kept one model fewer until a
    user removed it; one the file system fails to read now (EIO, permissions) may be
    sound: it stays, for a later start to check again."""
    import zipfile

    path = rundir.trial_dir(run_dir, number) / rundir.MODEL_FILE
    try:
        with zipfile.ZipFile(path) as saved:
            if not saved.namelist():
                raise zipfile.BadZipFile("it holds no arrays")
    except FileNotFoundError:  # another driver trimmed it meanwhile
        return ""
    except OSError as exc:  # the file may be sound: not removed, not counted this run
        return f"kept model of trial {number} unreadable, not counted: {path}: {exc}"[:300]
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        remove_trial_file(run_dir, number)
        return (
            f"kept model of trial {number} damaged ({path}: {exc}): removed, a later"
            " trial's takes its place"
        )[:300]
    return None


def remove_trial_file(run_dir: Path, number: int, name: str = rundir.MODEL_FILE) -> None:
    """Remove trial ``number``'s file ``name`` (its model, or its artifacts)."""
    folder = rundir.trial_dir(run_dir, number)
    with contextlib.suppress(OSError):  # else kept one too many: the next start removes it
        (folder / name).unlink(missing_ok=True)
        # A save cut short (its trial process killed at its time limit while it wrote)
        # leaves its temporary file, as large as the arrays (``atomic.replacing``).
        for partial in folder.glob(f".{Path(name).stem}.*.tmp*"):
            partial.unlink(missing_ok=True)
    # The folder the worker made for it, when nothing else is kept there: a campaign of
    # 100,000 trials left as many empty folders (inodes: an HPC file-system quota).
    with contextlib.suppress(OSError):  # holds other files (artifacts), or already gone
        folder.rmdir()
