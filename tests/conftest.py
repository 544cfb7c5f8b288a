"""Shared fixtures: a real collector on free ports (see collector_harness)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from collector_harness import RunningCollector, start_collector  # noqa: E402

from spanhouse.collector.store import Store  # noqa: E402


@pytest.fixture
def running_collector(tmp_path: Path) -> Iterator[RunningCollector]:
    """A started collector on an embedded store in a fresh directory; stopped after the test."""
    running = start_collector(tmp_path / "store")
    try:
        yield running
    finally:
        running.collector.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A migrated embedded store in a fresh directory, opened in this process; closed after the test."""
    opened = Store.open(f"chdb://{tmp_path / 'store'}")
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture(scope="module", params=["native", "reference"])
def decoder_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a module's tests once with the native (C) decoder and once with the pure-Python reference.

    Use with `pytestmark = pytest.mark.usefixtures("decoder_path")`: every Decoder made while the
    module's tests run (the collectors' included) takes that path.
    """
    from spanhouse.collector.receiver import decode

    with pytest.MonkeyPatch.context() as patch:
        if request.param == "reference":
            patch.setattr(decode, "_native_decode", lambda: None)
        elif decode._native_decode() is None:
            pytest.skip("the native decoder is not built (pip install -e . on a machine with a C compiler)")
        yield request.param
