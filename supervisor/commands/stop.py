"""``supervisor stop RUN [--now]``: ask every driver of a campaign to stop, wherever it
runs (``supervisor.study.stop_request``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.study import stop_request
from supervisor.study.recovery import HEARTBEAT_EVERY

if TYPE_CHECKING:
    import optuna


def stop_campaign(study: optuna.Study, now: bool = False, run_dir: Path | None = None) -> str:
    """Write the request into the campaign's storage; what will happen, in a line. A
    ``submit`` chain's driver job still waiting in the queue (of ``run_dir``) is
    cancelled: it would start only to stop, after it held the queue."""
    live = stop_request.live_drivers(study)
    request = stop_request.ask(study, "now" if now else "drain")
    said = ""
    if run_dir is not None and (run_dir / "driver").is_dir():
        from supervisor.clusters.handover import cancel_kept
        from supervisor.commands.driver_jobs import cancel_pending

        # The chain's driver jobs waiting, and the worker jobs its last link kept for them.
        cancel_kept(run_dir)
        if cancelled := cancel_pending(run_dir, study.study_name):
            jobs = ", ".join(cancelled)
            said = f"Cancelled the chain's driver job {jobs} (it waited in the queue). "
    how = (
        "running trials are cancelled and queued again"
        if request.mode == "now"
        else "no new trials; running ones finish"
    )
    if not live:
        return said + (
            f"No driver of {study.study_name!r} is running; a chain's next driver job will not "
            "start one. A `supervisor search` or `submit` you type withdraws the request."
        )
    return said + (
        f"Asked {len(live)} driver(s) of {study.study_name!r} to stop within "
        f"{HEARTBEAT_EVERY:g} s: {how} (supervisor status shows them)."
    )
