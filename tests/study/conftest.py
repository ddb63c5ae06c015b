"""Fixtures shared by the driver's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from distributed import Client, LocalCluster

from supervisor.clusters.handle import configure_dask


@pytest.fixture(scope="module")
def threads_client() -> Iterator[Client]:
    """Two single-thread workers in this process: cheap, for trials of the toy benchmark."""
    configure_dask()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
