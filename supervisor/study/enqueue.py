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


def enqueue(study: optuna.Study, entries: Sequence[Mapping[str, Any]]) -> int:
    """Queue each configuration of ``entries`` that no trial of ``study`` holds, in
    order; how many were queued."""
    if not entries:
        return 0
    from supervisor.study.storage import exclusive

    with exclusive(study):
        return _enqueue(study, entries)


def _enqueue(study: optuna.Study, entries: Sequence[Mapping[str, Any]]) -> int:
    held: set[tuple[tuple[str, str], ...]] = set()
    for t in study.get_trials(deepcopy=False):
        fixed = t.system_attrs.get("fixed_params")
        held.add(param_key(dict(fixed or t.params)))
        if fixed and all(name in t.params for name in fixed):  # as drawn: 8, not 8.0
            held.add(param_key({name: t.params[name] for name in fixed}))
    queued = 0
    for params in entries:
        key = param_key(dict(params))
        if key not in held:
            study.enqueue_trial(dict(params))
            held.add(key)
            queued += 1
    return queued
