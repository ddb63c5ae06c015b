"""The changeover simulation: the real driver on jobs that retire every ~100 s. Renewed
ahead, the cluster never drops below the workers asked for; replaced after the fact (as
Dask does), every changeover leaves a gap."""

from __future__ import annotations

from supervisor.perf import changeover


def test_renewal_closes_the_changeover_gaps() -> None:
    args = changeover.parse_args(["--trials", "500", "--jobs", "4"])
    slots = args.jobs * args.processes
    before = changeover.figures(changeover.simulate(args, "dask"), slots)
    after = changeover.figures(changeover.simulate(args, "renewal"), slots)
    assert before["changeovers"] >= 4 and after["changeovers"] >= 4
    assert before["below"] > 15 * before["changeovers"] / 2  # >= 15 s lost-worker timeout
    assert after["below"] == 0.0
    assert after["busy"] > max(0.9, before["busy"] + 0.1)
    # Renewing ahead costs allocation: replacements overlap the jobs they replace.
    assert after["jobs"] >= before["jobs"]
