"""Writer retry and spool options: values, errors naming the key, where the spool goes, start-up failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spanhouse.collector import config as config_mod
from spanhouse.collector.config import ConfigError, spool_directory

from collector_process import CollectorProcess, clean_env


@pytest.mark.parametrize("tree, message", [
    ({"writer": {"retry_initial_s": 0}}, "writer.retry_initial_s: must be greater than 0, got 0"),
    ({"writer": {"retry_max_s": -1}}, "writer.retry_max_s: must be greater than 0, got -1"),
    ({"writer": {"retry_initial_s": 5, "retry_max_s": 1}}, "writer.retry_max_s (1.0) must be at least "
                                                           "writer.retry_initial_s (5.0)"),
    ({"spool": {"max_size_mib": 0}}, "spool.max_size_mib: must be greater than 0, got 0"),
    ({"spool": {"max_size_mib": "lots"}}, "spool.max_size_mib: expected int, got 'lots'"),
    ({"spool": {"enabled": "maybe"}}, "spool.enabled: expected bool, got 'maybe'"),
    ({"spool": {"fsnyc": True}}, "spool.fsnyc: unknown option (did you mean spool.fsync?)"),
])
def test_bad_writer_or_spool_value_is_refused_naming_the_key(tree: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_mod.load(None, environ={}, overrides=tree)
    assert message in str(info.value)


def test_spool_options_from_the_environment() -> None:
    cfg = config_mod.load(None, environ={"SPANHOUSE_SPOOL__MAX_SIZE_MIB": "64", "SPANHOUSE_SPOOL__FSYNC": "true",
                                         "SPANHOUSE_WRITER__RETRY_MAX_S": "3"})
    assert (cfg.spool.max_size_mib, cfg.spool.fsync, cfg.writer.retry_max_s) == (64, True, 3.0)


@pytest.mark.parametrize("store_url, directory, expected", [
    ("chdb:///var/lib/spanhouse", "", Path("/var/lib/spanhouse/spool")),
    ("http://user:pw@ch.internal:8123/spans", "", Path.cwd() / "spanhouse-spool"),
    ("chdb:///var/lib/spanhouse", "/mnt/fast/spool", Path("/mnt/fast/spool")),
])
def test_where_the_spool_lives(store_url: str, directory: str, expected: Path) -> None:
    cfg = config_mod.load(None, environ={}, overrides={"store": {"url": store_url}, "spool": {"directory": directory}})
    assert spool_directory(cfg) == expected


def start_cli(store_dir: Path, spool_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "spanhouse.collector.cli", "collector", "--store", f"chdb://{store_dir}",
         "--grpc", "127.0.0.1:0", "--http", "", "--query-endpoint", ""],
        capture_output=True, text=True, timeout=120, env=clean_env(SPANHOUSE_SPOOL__DIRECTORY=str(spool_dir)))


def test_a_spool_directory_that_cannot_be_created_stops_start_up_with_its_path(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the spool should go")
    result = start_cli(tmp_path / "store", blocker / "spool")
    assert result.returncode == 1
    assert f"cannot use spool directory {blocker / 'spool'}" in result.stderr


def test_a_second_collector_on_the_same_spool_directory_is_refused(tmp_path: Path) -> None:
    spool_dir = tmp_path / "shared-spool"
    first = CollectorProcess(tmp_path / "store-a", env={"SPANHOUSE_SPOOL__DIRECTORY": str(spool_dir)})
    try:
        result = start_cli(tmp_path / "store-b", spool_dir)
        assert result.returncode == 1
        assert "in use by another collector (give each collector its own spool.directory)" in result.stderr
    finally:
        assert first.terminate() == 0
        first.stop()
