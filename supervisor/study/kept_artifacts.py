"""Which trials' artifacts a campaign keeps: those of its ``KEEP`` best trials.

A worker saves a complete trial's ``Benchmark.artifacts()`` (``rundir.ARTIFACTS_FILE`` in
the trial's folder: the speech benchmark's confusion matrix, the GAN's generated maps,
the basecaller's decoded read). Their one reader is the report, which draws the best
trial's (``supervisor.report.artifacts``; where that file cannot be read, the next
best's). Every complete trial's was kept: a campaign of 100,000 trials left 100,000
folders and files that nothing read (inodes: an HPC file system's quota).

The driver keeps those of the ``KEEP`` best trials that keep the constraints, by the
first objective as the report ranks them (ties: the earlier trial), and removes the
file, and the folder its worker made for it when it holds nothing else, of any other
trial as soon as its rank is known: one that did not complete, breaks the constraints,
or ranks below ``KEEP`` (a later, better trial pushes one out). A trial's ``artifacts``
attribute still names the file its worker wrote; the report reads those it finds.

Several drivers of one campaign each keep the best ``KEEP`` they know of; a trial that one
removes had ``KEEP`` better in the study, so the campaign's best are never removed. A
resume ranks the trials that saved artifacts from the study, not from a listing of the
trials folder (100,000 entries on a parallel file system's metadata server).

The same ranking keeps a campaign's ensemble predictions (``outputs.npz``, saved when the
space file has an ``ensemble:`` section): the ensemble takes its members from the best
``size``, ``pool`` or ``candidates`` trials (``supervisor.ensemble.members.ranked``), and
trains again one whose file is gone (an ``ensemble`` run later with a larger ``--pool``).
A member trained for the ensemble (``supervisor:member_of``) keeps its own: it was wanted.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import supervisor.rundir as rundir
from supervisor.study import attrs
from supervisor.study.kept_models import remove_trial_file

if TYPE_CHECKING:
    import optuna

    from supervisor.config.ensemble import EnsembleConfig

KEEP = 5


def drop_lost(run_dir: Path, number: int) -> None:
    """Trial ``number``'s result was lost (its worker died, the campaign stopped it, or
    its driver died): the artifacts and predictions it may have saved first go, as its
    model does; nothing ranks them (its re-run is another trial). One stat where it saved
    none."""
    if rundir.trial_dir(run_dir, number).is_dir():
        for name in (rundir.ARTIFACTS_FILE, rundir.OUTPUTS_FILE):
            remove_trial_file(run_dir, number, name)


def outputs_kept(config: EnsembleConfig) -> int:
    """How many trials' ensemble predictions the ensemble step can use: the most any
    selection takes of the search's best."""
    return max(config.size, config.pool, config.candidates)


class KeptArtifacts:
    def __init__(
        self,
        run_dir: Path,
        study: optuna.Study,
        keep: int = KEEP,
        name: str = rundir.ARTIFACTS_FILE,
        attr: str = attrs.ARTIFACTS,
        adding: int | None = None,
    ) -> None:
        """``adding``: the trial about to be ``add``ed, told already: ranked by ``add``,
        which removes the file of the one it pushes out."""
        from optuna.study import StudyDirection
        from optuna.trial import TrialState

        from supervisor.study.feasibility import feasible

        self.run_dir, self.keep, self.name = run_dir, keep, name
        self.sign = -1.0 if study.directions[0] == StudyDirection.MAXIMIZE else 1.0
        self.losses: dict[int, float] = {}  # trial number -> first objective, lower better
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.number == adding:
                continue
            if t.values and t.user_attrs.get(attr) and feasible(t):
                self.losses[t.number] = self._loss(t.values[0])
        # The others' files went when their trials ended (or were left by a version that
        # kept every trial's: not looked for).
        self.losses = {n: self.losses[n] for n in self.numbers()[:keep]}

    def add(self, number: int, value: float) -> None:
        """Trial ``number`` completed with ``value`` (its first objective), keeping the
        constraints, and saved artifacts: kept if among the best, and a worse one goes."""
        self.losses[number] = self._loss(value)
        for worse in self.numbers()[self.keep :]:
            self.drop(worse)

    def drop(self, number: int) -> None:
        """Trial ``number``'s file is not to be kept."""
        self.losses.pop(number, None)
        remove_trial_file(self.run_dir, number, self.name)

    def numbers(self) -> list[int]:
        """The trials whose artifacts are kept, best first."""
        return sorted(self.losses, key=lambda n: (self.losses[n], n))

    def _loss(self, value: float) -> float:
        loss = self.sign * float(value)
        return loss if math.isfinite(loss) else math.inf
