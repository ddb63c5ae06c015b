"""The default TPE (README, Search at scale: Optuna's own start-up, measured against a
Sobol start-up, a start-up counted by asked trials and a share of exploration), the
options that choose the others, and the space file's refusal of bad values of them."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest

from supervisor.config import space
from supervisor.config.samplers import Startup, make_sampler
from supervisor.errors import SpaceError

X = optuna.distributions.FloatDistribution(0.0, 1.0)
SPACE: dict[str, optuna.distributions.BaseDistribution] = {"x": X, "y": X}


def tpe(options: dict[str, Any], seed: int = 3) -> Any:
    return make_sampler("tpe", options, seed)


def starts(sampler: Any, number: int) -> bool:
    """Whether trial ``number`` is drawn by the start-up sampler."""
    return bool(sampler.starts(SimpleNamespace(number=number)))


def asked(sampler: optuna.samplers.BaseSampler, n: int) -> list[tuple[float, float]]:
    """``n`` trials asked at once and left pending (as the first wave of a campaign)."""
    study = optuna.create_study(sampler=sampler)
    return [(t.params["x"], t.params["y"]) for t in (study.ask(SPACE) for _ in range(n))]


def test_the_default_tpe_is_optuna_s_own_multivariate_tpe_with_its_start_up() -> None:
    made = tpe({})
    assert isinstance(made, optuna.samplers.TPESampler) and not isinstance(made, Startup)
    assert made._multivariate is None and made._constant_liar  # Optuna 5.1's defaults
    assert made._n_startup_trials == 10  # random until 10 trials have finished
    assert getattr(made, "history_limit", None) == 300


def test_a_sobol_start_up_hands_over_like_optuna_s() -> None:
    made = tpe({"startup": "sobol"})
    assert isinstance(made, optuna.samplers.TPESampler) and isinstance(made, Startup)
    assert made.startup_trials == 10 and made.explore_share == 0.0
    assert isinstance(made.startup_sampler, optuna.samplers.QMCSampler)
    assert not made.until_asked  # Optuna's rule: the model once 10 trials have finished
    assert made._n_startup_trials == 0  # (the start-up is ``Startup``'s)


def test_the_model_takes_over_once_10_trials_have_finished() -> None:
    study = optuna.create_study(sampler=tpe({"startup": "sobol"}, seed=1))
    for _ in range(30):  # 30 pending: all start-up points, Sobol's
        study.ask(SPACE)
    made: Any = study.sampler
    assert made.starts(SimpleNamespace(number=30), study)
    for trial in study.get_trials()[:9]:
        study.tell(trial.number, 1.0)
    assert made.starts(SimpleNamespace(number=31), study)
    study.tell(9, 1.0)
    assert not made.starts(SimpleNamespace(number=32), study)
    asked_rule = tpe({"startup": "sobol", "startup_until": "asked"})
    assert [starts(asked_rule, n) for n in (0, 9, 10, 500)] == [True, True, False, False]


def test_the_start_up_trials_are_the_scrambled_sobol_points_of_the_seed() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        qmc = optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=3)
    ours = asked(tpe({"startup": "sobol"}), 30)
    sobol = asked(qmc, 30)
    # Trial 0 defines the space (QMC draws it at random); then Sobol's points, all of the
    # first wave while fewer than 10 trials have finished.
    assert ours[1:] == sobol[1:]
    assert asked(tpe({"startup": "sobol"}), 30) == ours  # reproducible from the seed
    assert asked(tpe({"startup": "sobol"}, 4), 30)[1:] != ours[1:]


def test_with_startup_until_asked_the_model_proposes_from_trial_10_away_from_pending() -> None:
    points = asked(tpe({"startup": "sobol", "startup_until": "asked"}, 0), 40)
    # Nothing finished: pending trials are constant liars, so trials 10-39 spread out.
    later = points[10:]
    nearest = [
        min(abs(a[0] - b[0]) + abs(a[1] - b[1]) for b in points[:i] + points[i + 1 :])
        for i, a in enumerate(later, start=10)
    ]
    assert len(set(later)) == len(later) and min(nearest) > 1e-3


def test_user_options_override_the_default() -> None:
    sized = tpe({"startup": "sobol", "n_startup_trials": 25})
    assert sized.startup_trials == 25 and sized._n_startup_trials == 0
    plain = tpe({"startup": "random", "explore": 0.25, "startup_until": "asked"})
    assert type(plain.startup_sampler) is optuna.samplers.RandomSampler
    assert sum(starts(plain, n) for n in range(10, 50)) == 10  # a quarter of the model's
    assert tpe({"n_startup_trials": 3})._n_startup_trials == 3  # Optuna's own, resized
    assert tpe({"multivariate": False})._multivariate is False
    other = make_sampler("random", {}, 3)  # only TPE has a start-up of the supervisor's
    assert not isinstance(other, Startup)


SPACE_FILE = """\
benchmark: "tests.toy_benchmark:ToyBenchmark"
params:
  x: {type: float, low: -4, high: 4}
budget: {trials: 2}
sampler: {name: tpe, options: OPTIONS}
"""


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ("{startup: halton}", "expected one of sobol, random, optuna"),
        ("{explore: 1.5}", "expected a number in [0, 1)"),
        ("{explore: yes}", "expected a number in [0, 1)"),
        ("{startup: optuna, explore: 0.1}", "needs startup: sobol or random"),
        ("{explore: 0.1}", "needs startup: sobol or random"),
        ("{startup_until: never}", "expected one of finished, asked"),
    ],
)
def test_bad_start_up_options_are_refused(tmp_path: Path, options: str, fragment: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SPACE_FILE.replace("OPTIONS", options))
    with pytest.raises(SpaceError, match=r"sampler\.options") as info:
        space.load(path)
    assert fragment in str(info.value)


def test_good_start_up_options_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SPACE_FILE.replace("OPTIONS", "{startup: random, explore: 0.1}"))
    assert space.load(path).sampler_options == {"startup": "random", "explore": 0.1}
