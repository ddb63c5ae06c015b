"""``supervisor calibrate BENCHMARK``: its flags checked, then the measurement shown.

Every flag (the benchmark, its options, the profile to write into) is checked before the
first measurement: a typo must not cost minutes of measuring and then fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from supervisor.commands.preflight import count, makeable_dir, profile_to_write
from supervisor.errors import UserError, did_you_mean

MAX_EPOCHS = 1000  # timed epochs per measurement


def calibrate(
    benchmark: str,
    option: list[str],
    *,
    tiny: bool,
    epochs: int,
    cores: int | None,
    write: Path | None,
) -> None:
    from supervisor.benchmarks import OptionError, registry
    from supervisor.execution import calibrate as cal

    count(epochs, "--epochs", 1, MAX_EPOCHS)
    if cores is not None:
        count(cores, "--cores", 1, 1_000_000)
    target = registry.target(benchmark)
    name = benchmark if ":" not in benchmark else target.rpartition(":")[2]
    cls = registry.load(target)  # checked against the plugin contract: one line if broken
    if write is not None:
        profile_to_write(write)
    # Where the result is saved, tried before minutes of measuring that it would lose.
    makeable_dir(
        cal.cache_dir(), f"calibration results folder {cal.cache_dir()} (${cal.CACHE_ENV})"
    )
    options: dict[str, Any] = dict(cls.tiny_options) if tiny else {}
    given: set[str] = set()
    for item in option:
        key, value = _option(item, name, cls.options)
        if key in given:
            raise UserError(f"--option {key}: given twice")
        given.add(key)
        options[key] = value
    try:
        options = cls.validate_options(options)
    except OptionError as exc:
        raise UserError(f"--option {exc.key}: {exc.message}") from None

    print(f"{'threads/trial':>13} {'trials/node':>11} {'samples/s':>10}  per trial")

    def show(m: cal.Measurement) -> None:
        each = ", ".join(f"{r:.0f}" for r in m.per_trial)
        print(f"{m.packing.threads:>13} {m.packing.trials:>11} {m.aggregate:>10.0f}  {each}")

    # Saved under the benchmark as the user names it, as a space file's `benchmark: name`
    # does: `supervisor search` looks it up by that name (a plugin's class name alone
    # matched no space file, and the profile's comment named no command that runs).
    result = cal.calibrate(
        benchmark, target, options, epochs=epochs, max_cores=cores, on_result=show
    )
    print(
        f"recommended: {result.trials_per_node} trial(s) per node x "
        f"{result.threads_per_trial} thread(s) each ({result.samples_per_s:g} samples/s)"
    )
    print(f"saved for this host: {cal.save(result)}")
    if write is not None:
        cal.write_into_profile(result, write)
        print(f"written into {write}")


def _option(item: str, name: str, known: dict[str, Any]) -> tuple[str, Any]:
    """KEY=VALUE of ``--option``, the value read as YAML (plain data only)."""
    import yaml

    key, sep, text = item.partition("=")
    if not sep:
        raise UserError(f"--option {item!r}: expected KEY=VALUE")
    if key not in known:
        raise UserError(f"--option {key}: unknown option of {name}{did_you_mean(key, known)}")
    try:
        return key, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise UserError(f"--option {key}: not a YAML value ({problem})") from None
