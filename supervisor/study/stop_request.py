"""``supervisor stop``: ask a campaign's drivers to stop, through its storage.

A driver may run anywhere: in a batch job on a compute node (``supervisor submit``), on
another login node, under ``nohup``. A signal needs its host, job and process; every
driver already reads the study's storage. The request is a study attribute that each
driver reads with its heartbeat (every ``HEARTBEAT_EVERY`` s) and honours when it was
made after the driver started: ``drain`` starts no new trial and lets the running ones
finish (as the timeout does), ``now`` also cancels them (recorded as interrupted and
queued again, as Ctrl-C does). The driver chain of ``submit`` ends there too. A later
``supervisor search`` typed by the user withdraws it and runs.
"""

from __future__ import annotations

import getpass
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import optuna

KEY = "supervisor:stop"
Mode = Literal["drain", "now"]


@dataclass(frozen=True)
class StopRequest:
    mode: Mode
    at: float  # Unix time it was made
    by: str  # user@host

    def line(self) -> str:
        flag = " --now" if self.mode == "now" else ""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.at))
        return f"supervisor stop{flag} by {self.by} at {when}"

    @classmethod
    def of(cls, value: Any) -> StopRequest | None:
        """The request a study attribute holds, or None (none, or not one of ours)."""
        if not isinstance(value, dict) or value.get("mode") not in ("drain", "now"):
            return None
        at, by = value.get("at"), value.get("by")
        if isinstance(at, bool) or not isinstance(at, int | float) or not isinstance(by, str):
            return None
        return cls(value["mode"], float(at), by)


def read(study: optuna.Study) -> StopRequest | None:
    return StopRequest.of(study.user_attrs.get(KEY))


def ask(study: optuna.Study, mode: Mode) -> StopRequest:
    request = StopRequest(mode, time.time(), f"{getpass.getuser()}@{socket.gethostname()}")
    study.set_user_attr(KEY, {"mode": request.mode, "at": request.at, "by": request.by})
    return request


def withdraw(study: optuna.Study) -> None:
    study.set_user_attr(KEY, None)


def live_drivers(study: optuna.Study) -> list[str]:
    """The drivers of ``study`` alive now, by the test a resume applies (``recovery``)."""
    from supervisor.study import recovery  # Optuna's internals: not on import

    now = time.time()
    beats = recovery.leases(study.user_attrs)
    return [d for d in beats if recovery.driver_alive(d, beats, now, recovery.STALE_AFTER)]
