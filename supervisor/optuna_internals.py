"""Every private Optuna name the supervisor relies on, and nowhere else.

Optuna may move any of these in any release. Keeping them here means an upgrade has one
file to read, and ``tests/study/test_optuna_internals.py`` checks each name against the
installed Optuna (attributes on real instances, not only on classes), so a move fails
there, naming what moved, instead of inside a campaign. ``pyproject.toml`` bounds
``optuna<6``; before raising the bound, run that test against the new major version.

Checked against Optuna 5.1.0 (installed), 5.0.0 (the lowest allowed: the test, the
config and study tests pass there; TPE's defaults, multivariate and constant liar, are the
same) and the 4.x source of the journal modules, where every name below exists with the
same meaning (``JournalFileBackend.read_logs`` returned a list there, a generator in 5.x:
``SafeJournalFileBackend`` works with both).

What is used, and why:

* Journal storage (``supervisor.study.storage``): the campaign journal subclasses
  ``JournalFileBackend`` (a torn-write-safe append) and ``JournalStorage`` (batched
  attribute writes, an index of WAITING trials); Optuna offers no hook for either.

  - ``get_lock_file``: the context manager that holds a journal file's lock, so our
    append takes the same lock as Optuna's.
  - ``JournalOperation``: the op codes of journal records, to tell which records must be
    fsync'ed and which may wait in a batch. Its values are the file format.
  - ``JournalStorageReplayResult``: the in-memory replay of the journal; subclassed to
    index WAITING trials. Its ``_studies``, ``_trials`` and ``_trial_id_to_study_id``
    are read.
  - ``JournalFileBackend._file_path``, ``._lock``, ``._log_number_offset``: the file, its
    lock, and the byte offset of each line read (to skip reading an unchanged file).
  - ``JournalFileSymlinkLock._lock_file``: the lock's path, which the journal's own
    release removes in one call (``supervisor.study.journal_file._SymlinkLock``), and
    whose presence tells a reader that a torn last line is an append in progress.
  - ``JournalStorage.__init__``'s attributes (``_worker_id_prefix``, ``_backend``,
    ``_thread_lock``, ``_replay_result``), ``_sync_with_backend()``, and the
    ``_write_log(op_code, extra_fields)`` method, which ``CampaignJournalStorage``
    overrides: every write of ``JournalStorage`` goes through it.
* ``Study._storage``, ``Study._study_id``: a study's storage and its id there (no public
  accessors), to batch its writes and to read the campaign journal's log of finished
  trials (``supervisor.unfinished``).
* ``FrozenTrial._trial_id``: the storage's id of a trial (no public accessor), for the
  report's read-only view storage, which serves trials by id.
* ``Trial._cached_frozen_trial``: a running trial's own view of itself. ``Trial.user_attrs``
  deep-copies every attribute (a finished trial's provenance and epoch history) on each
  read; the driver reads one key at a time, several times per trial (``user_attrs``).
* ``_tell_with_warning``: what ``Study.tell`` does before it reads the trial back and
  deep-copies it for its return value, which the driver never uses (``tell``).
* ``FrozenStudy``: what ``BaseStorage.get_all_studies`` returns (the view's signature).
* ``compute_hypervolume``: the hypervolume Optuna's own ``plot_hypervolume_history``
  computes, for the number the Pareto report prints next to that figure.
* ``CONSTRAINTS_KEY``: the system attribute prefix Optuna keeps constraint values under
  (``"constraints"`` as a list, and ``"constraints:<name>"`` per value since 5.0): the
  report's light trials keep them so the figures colour infeasible trials.
* ``_get_pareto_front_trials_by_trials`` (as ``pareto_front``): ``Study.best_trials`` of
  trials read already; ``best_trials`` deep-copies every trial of the study first (with its
  history and traceback: 2 s for ``status`` at 10,000 trials, and the memory twice).
* ``FAIL_REASON_KEY``: the system attribute older Optuna versions (< 3) stored a failed
  trial's exception in; read for studies those versions wrote.
* ``LazyRandomState``: the random state every Optuna sampler (and TPE's, GP's and
  NSGA's parts) draws from; ``supervisor.config.samplers`` reseeds each per trial so a
  resumed run or a second driver does not replay the proposals of the first.
* ``IntersectionSearchSpace`` held by samplers as ``_search_space`` (TPE, CMA-ES,
  NSGA-II/III) or ``_intersection_search_space`` (GP), and its ``_include_pruned``:
  ``supervisor.config.history`` replaces it with an incremental one computing the same
  space (``replace_intersections``); Optuna offers no way to pass one in.
* TPE's steps, for ``supervisor.config.tpe_memo``: it overrides
  ``_get_internal_repr(trials, search_space, study)`` (to convert each trial's
  parameters once; it calls ``_get_params`` as Optuna's does) and ``_sample(study,
  trial, search_space)`` (to let one fit serve a burst of proposals: it keeps the two
  densities Optuna's ``_sample`` makes with ``_build_parzen_estimator``, below then above,
  and proposes from them as Optuna does, with ``_rng``, ``_n_ei_candidates``,
  ``_compute_acquisition_func`` and ``_compare``; ``_constant_liar`` says whether running
  trials are modelled). The test checks the names, the signatures and the order of the
  two fits.
* ``_n_startup_trials`` of TPE and GP: while fewer trials have finished, the sampler
  draws at random and ``supervisor.config.history`` hands it only the finished trials it
  counts (not a view of a first wave's 10,000 pending trials).
* ``_SearchSpaceTransform`` (as ``SearchSpaceTransform``): parameters to the unit cube and
  back (log scales, steps, categorical choices one-hot), the encoding Optuna's own GP and
  QMC samplers use; ``supervisor.config.trust_region`` models trials in it.
* ``VISUALIZATION_LOGGER``: the logger that writes one line per non-finite trial in every
  figure; the report filters those lines and counts them once.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from optuna._hypervolume import compute_hypervolume
from optuna._transform import _SearchSpaceTransform as SearchSpaceTransform
from optuna.samplers._lazy_random_state import LazyRandomState
from optuna.search_space import IntersectionSearchSpace
from optuna.storages.journal._file import get_lock_file
from optuna.storages.journal._storage import JournalOperation, JournalStorageReplayResult
from optuna.study._frozen import FrozenStudy
from optuna.study._multi_objective import _get_pareto_front_trials_by_trials
from optuna.study._tell import _tell_with_warning

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage, JournalStorage, RDBStorage
    from optuna.storages.journal import BaseJournalBackend, JournalFileBackend
    from optuna.trial import FrozenTrial

__all__ = [
    "CONSTRAINTS_KEY",
    "FAIL_REASON_KEY",
    "VISUALIZATION_LOGGER",
    "FrozenStudy",
    "JournalOperation",
    "JournalStorageReplayResult",
    "LazyRandomState",
    "SearchSpaceTransform",
    "compute_hypervolume",
    "get_lock_file",
    "pareto_front",
]

CONSTRAINTS_KEY = "constraints"  # optuna.study._constrained_optimization._CONSTRAINTS_KEY
FAIL_REASON_KEY = "fail_reason"


def pareto_front(trials: list[FrozenTrial], directions: list[Any]) -> list[FrozenTrial]:
    """``Study.best_trials`` (the Pareto front of the complete trials that keep the
    constraints) of ``trials`` read already: not a deep copy of each."""
    return _get_pareto_front_trials_by_trials(trials, directions, consider_constraint=True)


VISUALIZATION_LOGGER = "optuna.visualization._utils"

# Private attributes used, by the Optuna class whose instances carry them. The test checks
# each on a real instance; a method counts as an attribute.
INSTANCE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "JournalFileBackend": ("_file_path", "_lock", "_log_number_offset"),
    "JournalFileSymlinkLock": ("_lock_file",),
    "JournalStorage": (
        "_worker_id_prefix",
        "_backend",
        "_thread_lock",
        "_replay_result",
        "_sync_with_backend",
        "_write_log",
    ),
    "JournalStorageReplayResult": ("_studies", "_trials", "_trial_id_to_study_id", "worker_id"),
    "Study": ("_storage", "_study_id"),
    "_CachedStorage": ("_backend",),
    "LazyRandomState": ("rng",),
    "FrozenTrial": ("_trial_id",),
    "Trial": ("_cached_frozen_trial",),
    "TPESampler": (
        "_search_space",
        "_get_internal_repr",
        "_get_params",
        "_sample",
        "_build_parzen_estimator",
        "_compute_acquisition_func",
        "_compare",
        "_rng",
        "_n_ei_candidates",
        "_constant_liar",
        "_n_startup_trials",
    ),
    "CmaEsSampler": ("_search_space",),
    "GPSampler": ("_intersection_search_space", "_n_startup_trials"),
    "IntersectionSearchSpace": ("_include_pruned",),
}
# Where samplers keep their IntersectionSearchSpace (see replace_intersections).
INTERSECTION_ATTRIBUTES = ("_search_space", "_intersection_search_space")


# -- Study, FrozenTrial --------------------------------------------------------------------


def study_storage(study: optuna.Study) -> BaseStorage:
    return study._storage


def rdb_storage(study: optuna.Study) -> RDBStorage | None:
    """The database storage under ``study`` (Optuna wraps it in a cache), or None."""
    from optuna.storages import RDBStorage

    storage: Any = study._storage
    storage = getattr(storage, "_backend", storage)  # _CachedStorage's: its RDBStorage
    return storage if isinstance(storage, RDBStorage) else None


def study_id(study: optuna.Study) -> int:
    return study._study_id


def trial_id(trial: FrozenTrial) -> int:
    return trial._trial_id


def stored_system_attrs(study: optuna.Study, trial: optuna.Trial) -> dict[str, Any]:
    """A running trial's system attributes as the storage holds them: a sampler writes its
    own (CMA-ES's generation) there, not into the trial's view of itself."""
    return study._storage.get_trial_system_attrs(trial._trial_id)


def user_attrs(trial: optuna.Trial) -> Mapping[str, Any]:
    """A running trial's user attributes as it keeps them, read-only and not copied."""
    return MappingProxyType(trial._cached_frozen_trial.user_attrs)


def tell(study: optuna.Study, trial: optuna.Trial, **kwargs: Any) -> None:
    """``study.tell(trial, **kwargs)`` (``values``, ``state``, ``skip_if_finished``)
    without reading the trial back for a return value."""
    values = kwargs.pop("values", None)
    try:
        _tell_with_warning(study=study, trial=trial, value_or_values=values, **kwargs)
    except RuntimeError as exc:
        # GridSampler and BruteForceSampler call study.stop() from after_trial once their
        # space is covered, which raises outside study.optimize; the trial's state was
        # stored all the same (in a finally). A resume that closed the grid's last
        # running point (its driver killed) crashed here.
        if "Study.stop" not in str(exc):
            raise


# -- samplers ------------------------------------------------------------------------------


def replace_intersections(
    sampler: object, make: Callable[[bool], IntersectionSearchSpace]
) -> None:
    """Each ``IntersectionSearchSpace`` (that class exactly) the sampler keeps is replaced
    by ``make(include_pruned)``, with its ``include_pruned``."""
    for name in INTERSECTION_ATTRIBUTES:
        found = getattr(sampler, name, None)
        if type(found) is IntersectionSearchSpace:
            setattr(sampler, name, make(found._include_pruned))


def tpe_sample(
    sampler: Any, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]
) -> dict[str, Any]:
    """Optuna's ``TPESampler._sample`` on ``sampler`` (a subclass that overrides it)."""
    from optuna.samplers import TPESampler

    return TPESampler._sample(sampler, study, trial, search_space)


# -- JournalFileBackend --------------------------------------------------------------------


def file_path(backend: JournalFileBackend) -> str:
    return backend._file_path


def file_lock(backend: JournalFileBackend) -> Any:
    """The backend's ``BaseJournalFileLock``, for ``get_lock_file``."""
    return backend._lock


def lock_path(journal: str) -> str:
    """Where the journal file's lock (a symlink) is while a process appends to it."""
    from optuna.storages.journal import JournalFileSymlinkLock

    return str(JournalFileSymlinkLock(journal)._lock_file)


def line_offsets(backend: JournalFileBackend) -> dict[int, int]:
    """Log number -> byte offset of its line, for the lines the backend has read."""
    return backend._log_number_offset


# -- JournalStorage ------------------------------------------------------------------------


def init_journal_storage(
    storage: JournalStorage,
    backend: BaseJournalBackend,
    make_replay: Callable[[str], JournalStorageReplayResult],
) -> None:
    """``JournalStorage.__init__`` with the replay ``make_replay(worker_id_prefix)``; the
    snapshot part of Optuna's is left out (a file backend keeps no snapshot)."""
    storage._worker_id_prefix = worker_id_prefix()
    storage._backend = backend
    storage._thread_lock = threading.Lock()
    storage._replay_result = make_replay(storage._worker_id_prefix)
    with storage._thread_lock:
        storage._sync_with_backend()


def replace_replay(
    storage: JournalStorage, make_replay: Callable[[str], JournalStorageReplayResult]
) -> None:
    """After ``JournalStorage.__setstate__``: our replay instead of the plain one."""
    storage._worker_id_prefix = worker_id_prefix()
    storage._replay_result = make_replay(storage._worker_id_prefix)


def worker_id_prefix() -> str:
    """What a storage's records name their writer by, before its thread: every record of
    the journal holds it. Optuna's full UUID and thread ident took 52 of a trial's
    intermediate value's 143 bytes; 48 random bits tell the few processes of a campaign
    apart as well (with the thread's native id, ``replay.IndexedReplay.worker_id``)."""
    return uuid.uuid4().hex[:12] + "-"


def backend(storage: JournalStorage) -> BaseJournalBackend:
    return storage._backend


def thread_lock(storage: JournalStorage) -> threading.Lock:
    return storage._thread_lock


def replay(storage: JournalStorage) -> JournalStorageReplayResult:
    return storage._replay_result


def sync(storage: JournalStorage) -> None:
    """Apply the records written since the last read (the caller holds the thread lock)."""
    storage._sync_with_backend()


# -- JournalStorageReplayResult ------------------------------------------------------------


def adopt_replay(result: JournalStorageReplayResult, worker_id_prefix: str) -> None:
    """A replay unpickled for a storage of ``worker_id_prefix``, as Optuna's
    ``JournalStorage.restore_replay_result`` restores a snapshot: it owns no trial yet."""
    result._worker_id_prefix = worker_id_prefix
    result._worker_id_to_owned_trial_id = {}
    result._last_created_trial_id_by_this_process = -1


def replay_trials(result: JournalStorageReplayResult) -> dict[int, FrozenTrial]:
    """Trial id -> trial, every study's."""
    return result._trials


def replay_studies(result: JournalStorageReplayResult) -> dict[int, FrozenStudy]:
    return result._studies


def replay_study_of(result: JournalStorageReplayResult) -> dict[int, int]:
    """Trial id -> id of its study."""
    return result._trial_id_to_study_id


def replay_study_trials(result: JournalStorageReplayResult) -> dict[int, list[int]]:
    """Study id -> ids of its trials, in number order."""
    return result._study_id_to_trial_ids


def apply_set_trial_param(result: JournalStorageReplayResult, log: dict[str, Any]) -> None:
    """Optuna's replay of one parameter record (``JournalStorageReplayResult``'s own)."""
    JournalStorageReplayResult._apply_set_trial_param(result, log)
