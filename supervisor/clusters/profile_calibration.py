"""A launcher profile's ``calibration:`` section (``supervisor calibrate --write``): the
keys it sizes, and the benchmark it was measured for."""

from __future__ import annotations

from typing import Any

from supervisor.errors import UserError


def apply_calibration(
    kind: str, values: dict[str, Any], cal: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Add the packing ``cal`` measured to the profile's ``values`` where the profile
    sets none itself; ``cal`` if it sized anything, else None (the profile's keys win)."""
    if cal is None:
        return None
    given = set(values)
    threads, trials = cal["threads_per_trial"], cal["trials_per_node"]
    if kind == "local":
        values.setdefault("workers", trials)
    if kind in ("local", "mpi"):
        values.setdefault("threads", threads)
    elif values.get("gpus"):  # measured on a GPU node: trials packed per GPU
        values.setdefault("trials_per_gpu", per_gpu(cal, values["gpus"]))
    else:
        values.setdefault("processes", trials)
        values.setdefault("cores", threads * trials)
    return cal if set(values) != given else None


def per_gpu(cal: dict[str, Any], gpus: int) -> int:
    """Trials per GPU of a calibration ``cal`` for a job of ``gpus`` GPUs: its trials were
    spread over the GPUs it names (its node's), else over the job's. Divided by the job's
    alone, a calibration of a 4-GPU node packed 4 times too many on a job of 1 GPU."""
    return max(1, cal["trials_per_node"] // (cal.get("gpus") or gpus))


def check_calibrated_for(
    file: str, cal: dict[str, Any] | None, benchmark: str, target: str
) -> None:
    """Refuse a profile (``file``) whose calibration ``cal`` sizes the cluster for another
    benchmark than ``benchmark`` (its registry ``target``): measured for one model, it
    packed another (a larger one out of memory, a smaller one on too few trials) without
    a word."""
    if cal is None:
        return
    measured = str(cal["benchmark"])
    if target_of(measured) not in (target, benchmark):
        raise UserError(
            f"{file}: calibration: measured for benchmark {measured!r}, not"
            f" {benchmark!r}, which this command trains: its packing"
            f" ({cal['trials_per_node']} trial(s) x {cal['threads_per_trial']} thread(s)) was"
            f" never measured for it; run supervisor calibrate {benchmark} --write"
            f" {file}, or set the packing in the profile yourself"
        )


def target_of(benchmark: str) -> str:
    """The "module:attr" of a benchmark name; a name no longer registered as it is."""
    from supervisor.benchmarks import registry
    from supervisor.benchmarks.contract import PluginError

    try:
        return registry.target(benchmark)
    except PluginError:
        return benchmark
