"""A driver's lease (its heartbeat in the study) over a long campaign: what it costs the
journal, and that another host never finds a live driver's lease stale."""

from __future__ import annotations

from pathlib import Path

import optuna

from supervisor.study import attrs, recovery
from supervisor.study.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
DRIVER = "login02.cluster:4242:beefcafe"  # another host's: judged by its lease alone
START = 1_800_000_000.4


def _looks(seconds: float) -> list[float]:
    """The times of a driver's looks at its lease: every HEARTBEAT_EVERY s, as its loop."""
    n = int(seconds / recovery.HEARTBEAT_EVERY)
    return [START + i * recovery.HEARTBEAT_EVERY for i in range(n)]


def test_a_day_of_heartbeats_costs_the_journal_under_1_5_mb(tmp_path: Path) -> None:
    """A heartbeat every 5 s with the time to the microsecond: 17,280 records and 2.9 MB
    of journal a day, read again by every command that opens the campaign."""
    journal = tmp_path / "journal.log"
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{journal}"))
    before = journal.stat().st_size
    renewed = 0.0
    for now in _looks(3600.0):  # an hour
        renewed = recovery.renew(study, DRIVER, renewed, now)
    day = (journal.stat().st_size - before) * 24
    assert day < 1.5e6, f"{day / 1e6:.2f} MB a day"
    beat = recovery.leases(study.user_attrs)[DRIVER]
    assert isinstance(beat, int) and START - 3600 < beat <= START + 3600


def test_another_host_finds_a_live_driver_s_lease_fresh_at_every_moment() -> None:
    """Renewed less often, the lease still never looks stale, even read from a host whose
    clock runs 15 s ahead; once the driver stops it is stale within STALE_AFTER."""
    study = optuna.create_study()
    renewed, fresh = 0.0, []
    for now in _looks(600.0):
        renewed = recovery.renew(study, DRIVER, renewed, now)
        read = now + recovery.HEARTBEAT_EVERY - 0.01  # just before the next look
        beats = recovery.leases(study.user_attrs)
        fresh.append(recovery.driver_alive(DRIVER, beats, read + 15.0, recovery.STALE_AFTER))
    assert all(fresh)
    beats = recovery.leases(study.user_attrs)  # the driver killed after its last look
    assert not recovery.driver_alive(DRIVER, beats, now + 31.0, recovery.STALE_AFTER)
    recovery.renew(study, DRIVER, renewed, now + 1.0, final=True)
    assert attrs.HEARTBEAT_PREFIX + DRIVER in study.user_attrs
    assert DRIVER not in recovery.leases(study.user_attrs)  # a driver that stopped holds none
