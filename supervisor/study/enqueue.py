"""Queue the space file's ``enqueue:`` configurations (``supervisor.config.enqueue``).

Optuna's ``enqueue_trial(skip_if_exists=True)`` compares each new configuration with
every trial of the study, per configuration; a resume of a long campaign with many
entries would pay trials x entries. This reads the study once and keeps the same
identity (the fixed parameters a trial was queued with, else its parameters), so a
resume queues only the configurations no trial holds yet. Drivers started together (one
space file, one storage) queue under the storage's lock (``storage.exclusive``), each
reading what the others queued: each configuration once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from supervisor.study.index import param_key

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial


def enqueue(study: optuna.Study, entries: Sequence[Mapping[str, Any]]) -> int:
    """Queue each configuration of ``entries`` that no trial of ``study`` holds, in
    order; how many were queued."""
    if not entries:
        return 0
    from supervisor.study.storage import exclusive

    with exclusive(study):
        return _enqueue(study, entries)


def _enqueue(study: optuna.Study, entries: Sequence[Mapping[str, Any]]) -> int:
    queued = missing(study.get_trials(deepcopy=False), entries)
    for params in queued:
        study.enqueue_trial(dict(params))
    return len(queued)


def missing(
    trials: Sequence[FrozenTrial], entries: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The configurations of ``entries`` that none of ``trials`` holds, each once, in order:
    what a start queues (also what ``--dry-run`` says a resume queues)."""
    held: set[tuple[tuple[str, str], ...]] = set()
    for t in trials:
        fixed = t.system_attrs.get("fixed_params")
        held.add(param_key(dict(fixed or t.params)))
        if fixed and all(name in t.params for name in fixed):  # as drawn: 8, not 8.0
            held.add(param_key({name: t.params[name] for name in fixed}))
    found = []
    for params in entries:
        key = param_key(dict(params))
        if key not in held:
            found.append(params)
            held.add(key)
    return found
