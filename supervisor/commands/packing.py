"""How many trials the default local cluster runs at once, with how many threads each:
the user's flags, else this host's ``supervisor calibrate`` result, else every core.

Shared by the search and its ``--dry-run``, which shows the packing before it starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor.clusters.profile import Launcher


def calibrated(launcher: Launcher | None) -> bool:
    """Whether the cluster is the local default a saved calibration sizes: no launcher,
    or a local profile that sizes nothing ("the same as no --launcher", local.yaml)."""
    return launcher is None or (launcher.kind == "local" and not any(launcher.extra.values()))


def packing(
    opts: Any,
    benchmark: str,
    local_default: bool,
    options: dict[str, Any] | None = None,
    node: dict[str, Any] | None = None,
) -> tuple[int | None, int | None, str]:
    """(workers, threads, note) for the local cluster; ``opts``: a SearchOptions,
    ``options``: the search's benchmark options, ``node``: its ``node:`` settings."""
    # getattr: describe_experiment's callers may pass only what it used to read.
    workers, threads = getattr(opts, "workers", None), getattr(opts, "threads", None)
    if not local_default or getattr(opts, "scheduler", None) or workers or threads:
        return workers, threads, ""
    from supervisor.execution import calibrate

    cal, why_not = calibrate.saved_for_host(benchmark, options)
    if cal is None:
        return None, None, f" (calibration {why_not})" if why_not else ""
    # A calibration with --tiny data (a quick check) sized a search of the full data
    # without a word; other options are still this host's best guess, but said.
    other = [
        f"{k} {cal.options.get(k)!r}, not {v!r}"
        for k, v in (options or {}).items()
        if k in cal.options and cal.options[k] != v
    ]
    # Probes train with the node settings' defaults ("auto"): a space file's xla: on (twice
    # as slow on a CPU node) or mixed precision runs otherwise than was measured.
    other += [f"{k} auto, not {v!r}" for k, v in (node or {}).items() if v != "auto"]
    measured = f", measured with {'; '.join(other[:3])}" if other else ""
    note = f" (packing from supervisor calibrate{measured})"
    return cal.trials_per_node, cal.threads_per_trial, note
