"""The ``ensemble:`` section of a space file (and the flags of ``supervisor ensemble``).

Which members make the ensemble (DeepHyper's selector; the aggregator is per benchmark,
``supervisor.ensemble.aggregate``):

* ``topk``: the ``size`` best complete trials of the search;
* ``greedy``: Caruana et al.'s ensemble selection by validation NLL, with replacement,
  from the ``pool`` best complete trials (members may repeat: weights);
* ``seeds``: the best configuration trained with ``size`` seeds (the best trial itself
  is the first). With ``candidates: k``, the ``k`` best configurations are each trained
  with ``size`` seeds and the one of the best mean validation value is the ensemble: where
  training seeds differ as much as good configurations do, the best single result is
  mostly the luckiest seed (the winner's curse), and re-evaluating a few finalists with
  more seeds picks a better configuration (README, Search at scale).

``auto`` (the default) is greedy where members give class probabilities, else topk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Selection = Literal["auto", "topk", "greedy", "seeds"]
SELECTIONS: tuple[Selection, ...] = ("auto", "topk", "greedy", "seeds")
KEYS = ("select", "size", "pool", "candidates")
MAX_SIZE = 1000


@dataclass(frozen=True)
class EnsembleConfig:
    select: Selection = "auto"  # greedy for classifiers, else topk
    size: int = 5  # members (greedy: at most, it stops when NLL stops improving)
    pool: int = 20  # greedy: candidates, the best complete trials
    candidates: int = 1  # seeds: configurations re-evaluated with ``size`` seeds each

    def to_dict(self) -> dict[str, Any]:
        out = {"select": self.select, "size": self.size, "pool": self.pool}
        return out | ({"candidates": self.candidates} if self.candidates > 1 else {})
