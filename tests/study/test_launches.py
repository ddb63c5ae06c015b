"""The trials of one driver step go to Dask together: one ``Client.map`` per placement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distributed import Client

from supervisor.study import attrs
from supervisor.study.driver import Driver
from tests.study.test_driver import counts, experiment, make_study


class CountingClient:
    """The real client; records how many trials each submit or map call carried."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.calls: list[int] = []

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(1)
        return self._client.submit(*args, **kwargs)

    def map(self, fn: Any, specs: list[Any], **kwargs: Any) -> Any:
        self.calls.append(len(specs))
        return self._client.map(fn, specs, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_fill_of_free_slots_is_one_message_to_the_scheduler(
    tmp_path: Path, threads_client: Client
) -> None:
    exp = experiment(tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 20, epochs: 1}")
    study = make_study(exp)
    client = CountingClient(threads_client)
    summary = Driver(exp, study, client, slots=8).run()  # type: ignore[arg-type]
    assert summary.finished == 20 and counts(study) == {"COMPLETE": 20}
    assert client.calls[0] == 8, "the first fill: eight trials in one map"
    assert sum(client.calls) == 20 and len(client.calls) < 20
    assert len({t.params["x"] for t in study.trials}) == 20


def test_twins_proposed_in_one_fill_wait_for_the_first(
    tmp_path: Path, threads_client: Client
) -> None:
    """Two configurations and eight free slots: a fill proposes twins of trials it has
    not sent yet; each configuration still trains once, the rest wait for its result."""
    exp = experiment(tmp_path, "  c: [a, b]\n  x: [1.0]", "{trials: 12, epochs: 1}")
    study = make_study(exp)
    client = CountingClient(threads_client)
    Driver(exp, study, client, slots=8).run()  # type: ignore[arg-type]
    trained = [t for t in study.trials if attrs.DUPLICATE_OF not in t.user_attrs]
    assert sorted(t.params["c"] for t in trained) == ["a", "b"]
    assert sum(client.calls) == 2, "only the two configurations went to Dask"
    assert counts(study)["COMPLETE"] == len(study.trials)
