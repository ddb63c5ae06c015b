"""The private Optuna names in ``supervisor.optuna_internals`` still exist, on real
instances, and still mean what the supervisor relies on. A new Optuna that moves one
fails here with its name; the rest of the suite would fail later and less clearly (or,
for ``_write_log``, not at all: batching would silently stop).

The internals module is imported inside the tests, so a moved import fails one test
that names it instead of the whole file at collection."""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import math
import os
import pickle
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState, create_trial

ROOT = Path(__file__).resolve().parents[1]
INTERNALS = ROOT / "supervisor" / "optuna_internals.py"
VERSION = f"Optuna {optuna.__version__}"
WHERE = "see supervisor/optuna_internals.py"

# (private module, name) for each private import of the internals module.
PRIVATE_IMPORTS = [
    ("optuna._hypervolume", "compute_hypervolume"),
    ("optuna._transform", "_SearchSpaceTransform"),
    ("optuna.storages.journal._file", "get_lock_file"),
    ("optuna.storages.journal._storage", "JournalOperation"),
    ("optuna.storages.journal._storage", "JournalStorageReplayResult"),
    ("optuna.samplers._lazy_random_state", "LazyRandomState"),
    ("optuna.study._frozen", "FrozenStudy"),
    ("optuna.study._multi_objective", "_get_pareto_front_trials_by_trials"),
    ("optuna.study._tell", "_tell_with_warning"),
]

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _private(module: str) -> bool:
    """An Optuna module that Optuna keeps private (a part of its path starts with _)."""
    parts = module.split(".")
    return parts[0] == "optuna" and any(part.startswith("_") for part in parts)


def _check_attributes(obj: object, cls: str) -> None:
    from supervisor.optuna_internals import INSTANCE_ATTRIBUTES

    missing = [name for name in INSTANCE_ATTRIBUTES[cls] if not hasattr(obj, name)]
    assert not missing, f"{VERSION}: {cls} instances no longer have {missing}; {WHERE}"


@pytest.fixture
def journal(tmp_path: Path) -> tuple[JournalStorage, JournalFileBackend, str]:
    """A plain Optuna journal storage holding one study with one RUNNING trial."""
    path = str(tmp_path / "journal.log")
    backend = JournalFileBackend(path)
    storage = JournalStorage(backend)
    study = optuna.create_study(study_name="s", storage=storage)
    study.ask({"x": FloatDistribution(0, 1)})
    return storage, backend, path


@pytest.mark.parametrize(("module", "name"), PRIVATE_IMPORTS)
def test_each_private_name_is_where_it_was(module: str, name: str) -> None:
    try:
        found = importlib.import_module(module)
    except ImportError:
        pytest.fail(f"{VERSION}: module {module} is gone (it held {name}); {WHERE}")
    assert hasattr(found, name), f"{VERSION}: {module}.{name} is gone; {WHERE}"


def test_the_list_above_is_every_private_import_of_the_internals_module() -> None:
    imported = {
        (node.module, alias.name)
        for node in ast.walk(ast.parse(INTERNALS.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module and _private(node.module)
        for alias in node.names
    }
    assert imported == set(PRIVATE_IMPORTS)


def test_only_the_internals_module_imports_private_optuna_modules() -> None:
    offenders = set()
    for path in sorted((ROOT / "supervisor").rglob("*.py")):
        if path == INTERNALS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                if _private(module):
                    offenders.add(f"{path.relative_to(ROOT)} {module}")
    assert offenders == set(), f"use supervisor.optuna_internals: {offenders}"


def test_private_attributes_are_read_only_in_the_internals_module() -> None:
    """Outside the internals module, no code reaches into Optuna objects' private
    attributes (``self.`` is left out: our own classes have private attributes too)."""
    from supervisor.optuna_internals import INSTANCE_ATTRIBUTES

    names = {n for names in INSTANCE_ATTRIBUTES.values() for n in names if n.startswith("_")}
    found = set()
    for path in sorted((ROOT / "supervisor").rglob("*.py")):
        if path == INTERNALS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in names
                and not (isinstance(node.value, ast.Name) and node.value.id == "self")
            ):
                found.add((str(path.relative_to(ROOT)), node.attr))
    assert found == set(), f"use supervisor.optuna_internals for {sorted(found)}"


def test_journal_instances_have_the_attributes_used(
    journal: tuple[JournalStorage, JournalFileBackend, str],
) -> None:
    import supervisor.optuna_internals as internals

    storage, backend, path = journal
    _check_attributes(backend, "JournalFileBackend")
    _check_attributes(storage, "JournalStorage")
    _check_attributes(internals.replay(storage), "JournalStorageReplayResult")
    assert internals.file_path(backend) == path
    assert internals.backend(storage) is backend


def test_write_log_is_the_one_path_of_every_write(
    journal: tuple[JournalStorage, JournalFileBackend, str],
) -> None:
    """CampaignJournalStorage overrides ``_write_log`` to batch writes: each write of
    JournalStorage must still go through it, with the same arguments."""
    import json

    from supervisor.optuna_internals import JournalOperation

    storage, _, path = journal
    parameters = list(inspect.signature(JournalStorage._write_log).parameters)
    assert parameters == ["self", "op_code", "extra_fields"], f"{VERSION}: {parameters}"
    seen: list[int] = []
    original = storage._write_log

    def spy(op_code: int, extra_fields: dict[str, Any]) -> None:
        seen.append(op_code)
        original(op_code, extra_fields)

    storage._write_log = spy  # type: ignore[method-assign]
    study = optuna.load_study(study_name="s", storage=storage)
    trial = study.ask({"x": FloatDistribution(0, 1)})
    trial.set_user_attr("k", 1)
    study.tell(trial, 0.5)
    assert seen == [
        JournalOperation.CREATE_TRIAL,
        JournalOperation.SET_TRIAL_PARAM,
        JournalOperation.SET_TRIAL_USER_ATTR,
        JournalOperation.SET_TRIAL_STATE_VALUES,
    ]
    # The op codes are the file format: the journal holds them as written.
    with open(path, encoding="utf-8") as f:
        codes = [json.loads(line)["op_code"] for line in f]
    assert codes[0] == JournalOperation.CREATE_STUDY and codes[-4:] == seen


def test_the_campaign_journal_sets_every_attribute_optunas_init_sets(tmp_path: Path) -> None:
    """CampaignJournalStorage replaces JournalStorage.__init__ (see init_journal_storage):
    an attribute a new Optuna adds there would be missing from ours."""
    from supervisor.study.storage import CampaignJournalStorage, SafeJournalFileBackend

    plain = JournalStorage(JournalFileBackend(str(tmp_path / "plain.log")))
    ours = CampaignJournalStorage(SafeJournalFileBackend(str(tmp_path / "ours.log")))
    missing = set(vars(plain)) - set(vars(ours))
    assert not missing, f"{VERSION}: JournalStorage.__init__ now also sets {missing}; {WHERE}"
    _check_attributes(ours, "JournalStorage")

    optuna.create_study(study_name="s", storage=ours).enqueue_trial({"x": 0.5})
    copy = pickle.loads(pickle.dumps(ours))  # as Dask ships it; __setstate__ replays anew
    assert set(vars(plain)) <= set(vars(copy))
    study = optuna.load_study(study_name="s", storage=copy)
    # The queued trial, found through the WAITING index of the replay set on unpickling.
    assert study.ask({"x": FloatDistribution(0, 1)}).params == {"x": 0.5}


def test_the_lock_and_the_line_offsets(
    journal: tuple[JournalStorage, JournalFileBackend, str],
) -> None:
    import supervisor.optuna_internals as internals

    _, backend, path = journal
    lock = internals.file_lock(backend)
    _check_attributes(lock, "JournalFileSymlinkLock")
    assert lock._lock_file == path + ".lock"  # what the journal's release removes
    with internals.get_lock_file(lock):
        assert os.path.lexists(path + ".lock")  # the symlink lock Optuna's appends take
    assert not os.path.lexists(path + ".lock")
    lines = len(list(backend.read_logs(0)))
    assert internals.line_offsets(backend)[lines] == os.path.getsize(path)


def test_the_replay_maps_trials_and_studies(
    journal: tuple[JournalStorage, JournalFileBackend, str],
) -> None:
    import supervisor.optuna_internals as internals

    storage, _, _ = journal
    study_id = storage.get_study_id_from_name("s")
    replay = internals.replay(storage)
    trials = internals.replay_trials(replay)
    assert [t.state for t in trials.values()] == [TrialState.RUNNING]
    (trial_id,) = trials
    assert internals.replay_study_of(replay) == {trial_id: study_id}
    assert isinstance(internals.replay_studies(replay)[study_id], internals.FrozenStudy)
    assert all(isinstance(s, internals.FrozenStudy) for s in storage.get_all_studies())


def test_the_database_under_optunas_cache(tmp_path: Path) -> None:
    import optuna

    import supervisor.optuna_internals as internals

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'x.db'}")
    study = optuna.create_study(storage=storage)
    _check_attributes(internals.study_storage(study), "_CachedStorage")
    assert internals.rdb_storage(study) is storage
    assert internals.rdb_storage(optuna.create_study()) is None


def test_study_storage_and_trial_id() -> None:
    import supervisor.optuna_internals as internals

    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    _check_attributes(study, "Study")
    assert internals.study_storage(study) is storage
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    for trial in study.get_trials():
        _check_attributes(trial, "FrozenTrial")
        assert storage.get_trial(internals.trial_id(trial)).number == trial.number


def test_compute_hypervolume_of_a_known_front() -> None:
    import numpy as np

    from supervisor.optuna_internals import compute_hypervolume

    front = np.array([[1.0, 2.0], [2.0, 1.0]])
    # Two 2 x 1 boxes that share a 1 x 1 corner.
    assert compute_hypervolume(front, np.array([3.0, 3.0])) == pytest.approx(3.0)


def test_constraints_are_kept_under_the_key_and_its_prefix() -> None:
    from optuna.study import _constrained_optimization

    from supervisor.optuna_internals import CONSTRAINTS_KEY

    assert getattr(_constrained_optimization, "_CONSTRAINTS_KEY", None) == CONSTRAINTS_KEY, (
        f"{VERSION}: optuna.study._constrained_optimization._CONSTRAINTS_KEY moved; {WHERE}"
    )
    x = FloatDistribution(0, 1)
    listed = create_trial(
        value=1.0, params={"x": 0.1}, distributions={"x": x}, system_attrs={CONSTRAINTS_KEY: [2.0]}
    )
    assert listed.constraints == {"0": 2.0}
    named = create_trial(value=1.0, params={"x": 0.1}, distributions={"x": x})
    named.set_constraint("memory", -1.0)
    assert named.system_attrs == {f"{CONSTRAINTS_KEY}:memory": -1.0}


def test_the_visualization_logger_reports_each_non_finite_trial() -> None:
    """The report filters these lines (one per trial per figure) off this logger."""
    from supervisor.optuna_internals import VISUALIZATION_LOGGER

    study = optuna.create_study()
    x = FloatDistribution(0, 1)
    for value in (1.0, math.inf):
        study.add_trial(create_trial(value=value, params={"x": 0.5}, distributions={"x": x}))
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger(VISUALIZATION_LOGGER)
    logger.addHandler(handler)
    try:
        optuna.visualization.plot_slice(study)
    finally:
        logger.removeHandler(handler)
    assert any("omitted in visualization" in r.getMessage() for r in records), (
        f"{VERSION}: no 'omitted in visualization' line on {VISUALIZATION_LOGGER}; {WHERE}"
    )


def test_samplers_hold_lazy_random_states_with_a_numpy_generator() -> None:
    """Per-trial reseeding finds each sampler's random states by this class and seeds
    their ``rng``; were they gone, a resumed run would replay the first run's proposals."""
    import numpy as np

    from supervisor.config.samplers import random_states

    states = random_states(optuna.samplers.TPESampler(seed=1))
    assert states, f"{VERSION}: TPESampler holds no LazyRandomState"
    for state in states:
        _check_attributes(state, "LazyRandomState")
        assert isinstance(state.rng, np.random.RandomState)


def test_samplers_keep_their_intersection_search_space_where_it_is_replaced() -> None:
    """``supervisor.config.history`` swaps each sampler's IntersectionSearchSpace for an
    incremental one; were it moved, the swap would find nothing and the cost of a
    proposal would grow with the trials in flight again, silently."""
    from optuna.search_space import IntersectionSearchSpace

    import supervisor.optuna_internals as internals

    class Incremental(IntersectionSearchSpace):
        made: list[bool] = []

        def __init__(self, include_pruned: bool) -> None:
            super().__init__(include_pruned)
            self.made.append(include_pruned)

    for cls, include_pruned in (("TPESampler", True), ("CmaEsSampler", False)):
        sampler = getattr(optuna.samplers, cls)(seed=1)
        _check_attributes(sampler, cls)
        found = [getattr(sampler, n, None) for n in internals.INTERSECTION_ATTRIBUTES]
        (space,) = [s for s in found if isinstance(s, IntersectionSearchSpace)]
        _check_attributes(space, "IntersectionSearchSpace")
        Incremental.made = []
        internals.replace_intersections(sampler, Incremental)
        made = Incremental.made
        assert made == [include_pruned], f"{VERSION}: {cls}'s include_pruned is not {made}"
        found = [getattr(sampler, n, None) for n in internals.INTERSECTION_ATTRIBUTES]
        assert any(isinstance(s, Incremental) for s in found), f"{VERSION}: {cls}; {WHERE}"


def test_the_gp_sampler_keeps_its_intersection_search_space_where_it_is_replaced() -> None:
    import supervisor.optuna_internals as internals

    # Read from its source: constructing a GPSampler needs torch, an optional extra.
    source = inspect.getsource(optuna.samplers.GPSampler.__init__)
    names = [n for n in internals.INTERSECTION_ATTRIBUTES if f"self.{n} =" in source]
    expected = internals.INTERSECTION_ATTRIBUTES
    assert names, f"{VERSION}: GPSampler no longer sets any of {expected}"
    assert "IntersectionSearchSpace(" in source, f"{VERSION}: GPSampler's search space moved"
    # The bounded history skips its view while the sampler is in its random start-up.
    assert "self._n_startup_trials = " in source, f"{VERSION}: GPSampler's start-up moved"


def test_tpe_has_the_steps_the_memo_overrides_and_calls() -> None:
    """``supervisor.config.tpe_memo`` overrides two TPE methods and calls others; were
    one renamed or its arguments changed, the memo would silently stop being used (or
    break proposals)."""
    sampler = optuna.samplers.TPESampler(seed=1)
    _check_attributes(sampler, "TPESampler")
    expected = {
        "_get_internal_repr": ["trials", "search_space", "study"],
        "_get_params": ["trial", "study"],
        "_sample": ["study", "trial", "search_space"],
        "_build_parzen_estimator": ["study", "search_space", "trials", "handle_below"],
        "_compute_acquisition_func": ["samples", "mpe_below", "mpe_above"],
        "_compare": ["samples", "acquisition_func_vals"],
    }
    for name, arguments in expected.items():
        found = list(inspect.signature(getattr(sampler, name)).parameters)
        assert found == arguments, f"{VERSION}: TPESampler.{name}{found}"
    # The shared fit takes the first density built as the good trials' one.
    source = inspect.getsource(optuna.samplers.TPESampler._sample)
    below, above = source.find("handle_below=True"), source.find("handle_below=False")
    assert 0 < below < above, f"{VERSION}: TPE's _sample no longer fits below, then above"


def test_tell_and_a_running_trials_user_attributes() -> None:
    """``tell`` records as ``Study.tell`` does (skipping a finished trial when asked);
    ``user_attrs`` reads a running trial's attributes as set, without a copy, read-only."""
    import supervisor.optuna_internals as internals

    study = optuna.create_study()
    trial = study.ask({"x": FloatDistribution(0, 1)})
    _check_attributes(trial, "Trial")
    trial.set_user_attr("history", [{"epoch": 0.0}])
    view = internals.user_attrs(trial)
    assert dict(view) == trial.user_attrs
    assert view["history"] is internals.user_attrs(trial)["history"]
    with pytest.raises(TypeError):
        view["history"] = []  # type: ignore[index]
    internals.tell(study, trial, values=[0.5])
    internals.tell(study, trial, values=[0.7], skip_if_finished=True)
    assert study.trials[0].value == 0.5 and study.trials[0].state == TrialState.COMPLETE
    with pytest.raises(ValueError, match="Cannot tell a COMPLETE trial"):
        internals.tell(study, trial, values=[0.7])
    failed = study.ask()
    internals.tell(study, failed, state=TrialState.FAIL)
    assert study.trials[1].state == TrialState.FAIL
