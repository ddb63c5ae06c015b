"""How the driver hands a trial to Dask: its ``TrialSpec``, its task key, its placement,
and the trials of one loop step sent together.

Every ``Client.submit`` is one graph update the scheduler handles on its own. When
several slots free at once (a campaign's first fill, workers joining, results arriving
together), the trials of that step go in one ``Client.map`` per placement: one scheduler
message and one graph update for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import supervisor.optuna_internals as internals
from supervisor.execution import channel
from supervisor.execution.trial import Trained, TrialSpec
from supervisor.execution.worker import run_trial
from supervisor.study import attrs
from supervisor.study.recorder import trial_seed

if TYPE_CHECKING:
    import optuna
    from distributed import Future

    from supervisor.config.space import Experiment
    from supervisor.study.index import ParamKey
    from supervisor.study.placement import Placement
    from supervisor.study.recorder import Recorder

# Where a trial may run: the workers it fits on (None: any) and the resources it needs.
Where = tuple[tuple[str, ...] | None, tuple[tuple[str, float], ...] | None]
Sent = Callable[["Future"], None]


class Driver(Protocol):
    """What a launch reads of its driver (``supervisor.study.driver.Driver``)."""

    exp: Experiment
    study: optuna.Study
    client: Any
    rec: Recorder
    threads: int
    run_dir: str | None
    channel: channel.DriverChannel | None
    prunes: bool
    save_outputs: bool
    placement: Placement
    resources: dict[str, float] | None
    driver_id: str


def trained_from(given: dict[str, Any]) -> Trained | None:
    """The kept model an ensemble member loads instead of training (``attrs.TRAIN_AS``)."""
    found = given.get("trained")
    if not isinstance(found, dict) or not isinstance(found.get("path"), str):
        return None
    metrics = found.get("metrics")
    return Trained(found["path"], dict(metrics) if isinstance(metrics, dict) else {})


class Launches:
    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self._queued: dict[Where, list[tuple[TrialSpec, str, Sent]]] = {}
        self.keys: set[ParamKey] = set()  # the configurations queued, not sent

    def __len__(self) -> int:
        return sum(map(len, self._queued.values()))

    def launch(self, trial: optuna.Trial, key: ParamKey, sent: Sent) -> None:
        """Queue ``trial`` (configuration ``key``) for ``send``; ``sent(future)`` is
        called once it is handed to Dask."""
        d = self.driver
        checkpoints = d.rec.checkpoint_dir(trial)
        # An ensemble member trains as its search trial did (``attrs.TRAIN_AS``).
        given = internals.user_attrs(trial).get(attrs.TRAIN_AS)
        given = given if isinstance(given, dict) else {}
        spec = TrialSpec(
            study_name=d.study.study_name,
            trial_number=trial.number,
            params={**given.get("inputs", d.exp.fixed), **trial.params},
            benchmark=d.exp.benchmark,
            benchmark_target=d.exp.benchmark_target,
            options=given.get("options", d.exp.options),
            epochs=given.get("epochs", d.exp.budget.epochs),
            seed=trial_seed(trial, d.exp.seed),
            data_seed=d.exp.seed,
            objectives=tuple(d.exp.metric_names),
            threads=d.threads,
            time_limit=d.exp.budget.trial_timeout,
            ranks=d.exp.ranks,
            run_dir=d.run_dir,
            node=d.exp.node,
            events_topic=d.channel.topic if d.channel else None,
            verdict_timeout=channel.VERDICT_TIMEOUT if d.prunes else 0.0,
            checkpoint_dir=str(checkpoints) if checkpoints is not None else None,
            checkpoint_every=d.exp.budget.checkpoint_every,
            save_outputs=d.save_outputs,
            keep_model=d.rec.models.next_trial() if d.rec.models is not None else None,
            trained=trained_from(given),
        )
        # The key carries the trial number so the dashboard's task stream is readable.
        task = f"trial-{trial.number}-{d.driver_id.rsplit(':', 1)[-1]}"
        # On workers with a lifetime: only those expected to outlive the trial.
        fits = d.placement.workers_for_next_trial()
        resources = d.resources
        where: Where = (
            tuple(fits) if fits else None,
            tuple(sorted(resources.items())) if resources else None,
        )
        self._queued.setdefault(where, []).append((spec, task, sent))
        self.keys.add(key)

    def send(self) -> None:
        """Hand every queued trial to Dask: one ``map`` per placement (``submit`` for one)."""
        queued, self._queued = self._queued, {}
        self.keys.clear()
        client = self.driver.client
        for (workers, resources), items in queued.items():
            where: dict[str, Any] = {}
            if workers is not None:
                where.update(workers=list(workers), allow_other_workers=True)
            if resources is not None:
                where["resources"] = dict(resources)
            specs = [spec for spec, _, _ in items]
            tasks = [task for _, task, _ in items]
            if len(items) == 1:
                futures = [client.submit(run_trial, specs[0], key=tasks[0], pure=False, **where)]
            else:
                futures = client.map(run_trial, specs, key=tasks, pure=False, **where)
            for (_, _, sent), future in zip(items, futures, strict=True):
                sent(future)
