"""A real Prometheus scrapes a running collector and evaluates the shipped rules over what it scraped."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from collector_harness import RunningCollector, free_port, start_collector
from metrics_helpers import genai_spans, get, prometheus_tool, wait_for

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "deploy" / "prometheus" / "rules" / "spanhouse.rules.yml"
SPANS = 23




@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = start_collector(tmp_path_factory.mktemp("scraped") / "store", metrics={"endpoint": "127.0.0.1:0"})
    try:
        yield running
    finally:
        running.collector.stop()


@pytest.fixture(scope="module")
def prometheus(collector: RunningCollector, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = prometheus_tool("prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "spanhouse", "static_configs": [
            {"targets": [f"127.0.0.1:{collector.collector.metrics_server.port}"]}]}],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen([binary, f"--config.file={folder / 'prometheus.yml'}",
                                f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address={address}"],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: process.poll() is not None or _ready(address), 60, "Prometheus to start")
        assert process.poll() is None, (folder / "prometheus.log").read_text()[-3000:]
        yield address
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _ready(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/-/ready", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def api(address: str, path: str, **params: str) -> Any:
    url = f"http://{address}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        doc = json.loads(response.read())
    assert doc["status"] == "success", doc
    return doc["data"]


def instant(address: str, query: str) -> float | None:
    result = api(address, "query", query=query)["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_what_the_collector_accepted(collector: RunningCollector, prometheus: str) -> None:
    wait_for(lambda: instant(prometheus, 'up{job="spanhouse"}') == 1, 60, "the first successful scrape")
    exporter = OTLPSpanExporter(endpoint=collector.grpc_endpoint, insecure=True, timeout=10)
    assert genai_spans(exporter, "scraped", SPANS) is SpanExportResult.SUCCESS
    wait_for(lambda: instant(prometheus, "sum(otelcol_receiver_accepted_spans_total)") == SPANS, 60,
             f"Prometheus to see {SPANS} accepted spans")
    collector.flush()
    wait_for(lambda: instant(prometheus, 'sum(spanhouse_genai_calls_total{service="scraped"})') == SPANS, 60,
             "the GenAI calls in Prometheus")
    assert instant(prometheus, "sum(otelcol_exporter_sent_spans_total)") == SPANS
    # The scrape listener serves readiness too, without the query endpoint.
    assert get(f"127.0.0.1:{collector.collector.metrics_server.port}", "/ready")[:2] == (200, "ready\n")


def test_prometheus_loads_and_evaluates_every_shipped_rule(prometheus: str) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        rules = [rule for group in api(prometheus, "rules")["groups"] for rule in group["rules"]]
        return rules if rules and all(rule.get("lastEvaluation", "").startswith("20") for rule in rules) else None

    rules = wait_for(evaluated, 60, "every rule to be evaluated once")
    assert len(rules) == 8
    assert {rule["health"] for rule in rules} == {"ok"}, [(r["name"], r.get("lastError")) for r in rules]
    # Nothing is wrong with this collector: no alert is pending or firing.
    assert [rule["name"] for rule in rules if rule["state"] != "inactive"] == []
