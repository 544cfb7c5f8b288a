"""Any ClickHouse client: the official JS client (@clickhouse/client, from npm) reads the store through the
collector's ClickHouse HTTP interface with a tenant key and an admin key."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from access_harness import Key, auth_overrides, export, span_request
from collector_harness import RunningCollector, start_collector

NODE_DIR = Path(__file__).resolve().parent / "node"
ACME = Key.new("acme")
GLOBEX = Key.new("globex")
ADMIN = Key.new("ops", admin=True)


@pytest.fixture(scope="module")
def node_query() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("Node.js and npm are needed for the JS client test (install them, e.g. apt-get install nodejs npm)")
    if not (NODE_DIR / "node_modules" / "@clickhouse" / "client").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR, check=True,
                       timeout=300)
    return NODE_DIR / "query.js"


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = start_collector(tmp_path_factory.mktemp("node-ch") / "store", **auth_overrides(ACME, GLOBEX, ADMIN))
    try:
        export(running.grpc_endpoint, span_request("acme-app", 3), metadata=ACME.metadata)
        export(running.grpc_endpoint, span_request("globex-app", 5), metadata=GLOBEX.metadata)
        running.flush()
        yield running
    finally:
        running.collector.stop()


def run(node_query: Path, running: RunningCollector, key: Key) -> dict[str, Any]:
    done = subprocess.run(["node", str(node_query), f"http://{running.query_endpoint}", key.tenant, key.key],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_js_client_reads_a_tenants_rows(node_query: Path, tenants: RunningCollector) -> None:
    out = run(node_query, tenants, ACME)
    assert out["ping"] is True
    assert out["json"] == [{"TenantId": "acme", "spans": 3}]
    assert out["jsonEachRow"] == [{"TenantId": "acme", "spans": 3}]
    assert out["params"] == [{"n": 0}]
    assert out["drop"] == {"code": "164", "type": "READONLY"}
    assert (out["compressed"], out["compressedEncoding"]) == ([{"n": 3}], "gzip")


def test_the_js_client_with_an_admin_key(node_query: Path, tenants: RunningCollector) -> None:
    out = run(node_query, tenants, ADMIN)
    assert out["json"] == [{"TenantId": "acme", "spans": 3}, {"TenantId": "globex", "spans": 5}]
    assert out["params"] == [{"n": 5}]
