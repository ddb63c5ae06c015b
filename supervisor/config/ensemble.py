"""The ``ensemble:`` section of a space file (and the flags of ``supervisor ensemble``).

Which members make the ensemble (DeepHyper's selector; the aggregator is per benchmark,
``supervisor.ensemble.aggregate``):

* ``topk``: the ``size`` best complete trials of the search;
* ``greedy``: Caruana et al.'s ensemble selection by validation NLL, with replacement,
  from the ``pool`` best complete trials (members may repeat: weights);
* ``seeds``: the best configuration trained with ``size`` seeds (the best trial itself
  is the first).

``auto`` (the default) is greedy where members give class probabilities, else topk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Selection = Literal["auto", "topk", "greedy", "seeds"]
SELECTIONS: tuple[Selection, ...] = ("auto", "topk", "greedy", "seeds")
KEYS = ("select", "size", "pool")
MAX_SIZE = 1000


@dataclass(frozen=True)
class EnsembleConfig:
    select: Selection = "auto"  # greedy for classifiers, else topk
    size: int = 5  # members (greedy: at most, it stops when NLL stops improving)
    pool: int = 20  # greedy: candidates, the best complete trials

    def to_dict(self) -> dict[str, Any]:
        return {"select": self.select, "size": self.size, "pool": self.pool}
