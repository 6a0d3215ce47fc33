"""Fixtures the integration modules share."""

import pytest

from tests.support.dask_cluster import local_cluster


@pytest.fixture(scope="module")
def cluster():
    """A real 2-worker dask cluster on 127.0.0.1 for the module (tests/support/dask_cluster.py)."""
    with local_cluster() as running:
        yield running
