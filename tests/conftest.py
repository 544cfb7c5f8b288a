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
