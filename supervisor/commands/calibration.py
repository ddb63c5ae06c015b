"""``supervisor calibrate BENCHMARK``: its flags checked, then the measurement shown.

Every flag (the benchmark, its options, the profile to write into) is checked before the
first measurement: a typo must not cost minutes of measuring and then fail.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from supervisor.commands.preflight import MAX_SECONDS, count, makeable_dir, profile_to_write
from supervisor.errors import UserError, did_you_mean

MAX_EPOCHS = 1000  # timed epochs per measurement


def calibrate(
    benchmark: str,
    option: list[str],
    tiny: bool,
    epochs: int,
    cores: int | None,
    write: Path | None,
    probe_timeout: float | None = None,
) -> None:
    """``probe_timeout``: seconds the first probe has (None: ``FIRST_TIMEOUT_S``)."""
    from supervisor.benchmarks import OptionError, registry
    from supervisor.execution import calibrate as cal

    count(epochs, "--epochs", 1, MAX_EPOCHS)
    first = cal.FIRST_TIMEOUT_S if probe_timeout is None else probe_timeout
    if not (isinstance(first, int | float) and 1 <= first < math.inf):
        raise UserError(f"--probe-timeout {first}: expected seconds, at least 1")
    if first > MAX_SECONDS:  # 1e300 was a traceback from the probe's timer thread
        raise UserError(
            f"--probe-timeout {first:.15g}: expected seconds, at most {MAX_SECONDS:.0f}"
        )
    if cores is not None:
        count(cores, "--cores", 1, 1_000_000)
        # More than the node has measured the node's cores alone, saved as theirs, with
        # no word that the allocation asked for was never measured.
        if cores > (usable := len(cal.usable_cores())):
            raise UserError(
                f"--cores {cores}: this node has {usable} usable core(s) (its CPU affinity"
                f" and quota); calibrate {cores} cores on a node (or allocation) of them"
            )
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

    shown: list[cal.Measurement] = []

    def show(m: cal.Measurement) -> None:
        shown.append(m)
        each = ", ".join(f"{r:.0f}" for r in m.per_trial) or f"failed: {m.error}"
        rate = f"{m.aggregate:>10.0f}" if not m.error else f"{'-':>10}"
        kept = "  (measured by the calibrate that was stopped)" if m.kept else ""
        print(f"{m.packing.threads:>13} {m.packing.trials:>11} {rate}  {each}{kept}")

    # Saved under the benchmark as the user names it, as a space file's `benchmark: name`
    # does: `supervisor search` looks it up by that name (a plugin's class name alone
    # matched no space file, and the profile's comment named no command that runs).
    try:
        result = cal.calibrate(
            benchmark,
            target,
            options,
            epochs=epochs,
            max_cores=cores,
            on_result=show,
            first_timeout=first,
        )
    except cal.ProbeTimeout as exc:  # the first probe's: the user's limit, or the default
        raise UserError(f"{exc}; --probe-timeout (now {first:g} s) gives it longer") from None
    except KeyboardInterrupt:  # said only "interrupted": the user thought the hour lost
        if shown:
            print(
                f"stopped: the {len(shown)} packing(s) measured are kept; the same command"
                " measures only the rest",
                file=sys.stderr,
            )
        raise
    print(
        f"recommended: {result.trials_per_node} trial(s) per node x "
        f"{result.threads_per_trial} thread(s) each ({result.samples_per_s:g} samples/s)"
    )
    print(f"saved for this host: {cal.save(result)}")
    if result.cores < len(cal.usable_cores()):  # --cores: search goes by the node's cores
        print(
            f"note: measured on {result.cores} of this node's {len(cal.usable_cores())} usable"
            f" cores: searches use it where {result.cores} core(s) are usable (an allocation"
            " of that size), not on this whole node"
        )
    if write is not None:
        _write_into(result, write)


def _write_into(result: Any, path: Path) -> None:  # a calibrate.Calibration
    """Write the calibration into the profile if the profile stays valid with it, and
    say which of the profile's own keys win over it: a copy of the shipped slurm.yaml
    (``cores: 1``, ``processes: 1``) took the section and went on packing 1 x 1."""
    from supervisor.clusters import profile
    from supervisor.clusters.profile_calibration import per_gpu, target_of
    from supervisor.execution import calibrate_profile

    text = calibrate_profile.profile_text(result, path)
    ref = str(path) if "/" in str(path) else f"./{path}"  # a file, never a profile name
    try:
        launcher = profile.load(ref, text)
    except UserError as exc:
        raise UserError(
            f"--write {path}: not written, the profile would be refused with the calibration"
            f" ({result.trials_per_node} trial(s) x {result.threads_per_trial} thread(s)): {exc}"
        ) from None
    before = _measured_for(path)
    calibrate_profile.write_into_profile(result, path, text)
    print(f"written into {path}")
    if before is not None and target_of(before) != target_of(result.benchmark):
        print(
            f"note: it replaced the calibration measured for {before}: a search of {before}"
            f" with {path} is now refused where this one sizes the cluster; calibrate"
            f" {before} into a profile of its own"
        )
    trials, threads = result.trials_per_node, result.threads_per_trial
    if launcher.kind in ("local", "mpi"):
        want = {"threads": threads, **({"workers": trials} if launcher.kind == "local" else {})}
        have = {k: launcher.extra.get(k) for k in want}
    elif launcher.gpus:
        want = {"trials_per_gpu": per_gpu(result.to_dict(), launcher.gpus)}
        have = {"trials_per_gpu": launcher.trials_per_gpu}
    else:
        want = {"processes": trials, "cores": threads * trials}
        have = {"processes": launcher.processes, "cores": launcher.cores}
    differ = [k for k in want if have[k] != want[k]]
    if differ:
        wins, them = ("win", "them") if len(differ) > 1 else ("wins", "it")
        print(
            f"note: {path} sets {', '.join(f'{k}: {have[k]}' for k in differ)} itself, which"
            f" {wins} over the calibration's {', '.join(f'{k}: {want[k]}' for k in differ)};"
            f" delete {them} from the profile (or set {them} to null) to pack as measured"
        )


def _measured_for(path: Path) -> str | None:
    """The benchmark of the calibration the profile at ``path`` holds, if any."""
    import yaml

    try:
        section = yaml.safe_load(path.read_text()).get("calibration")
        return str(section["benchmark"])
    except (OSError, yaml.YAMLError, AttributeError, TypeError, KeyError):  # none (yet)
        return None


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
