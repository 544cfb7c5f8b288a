"""Who may read /metrics and /ready, on the query endpoint and on the scrape listener (metrics.endpoint)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from access_harness import Key, auth_overrides
from collector_harness import RunningCollector, start_collector
from metrics_helpers import get, scrape, stats, value

ACME = Key.new("acme")
ADMIN = Key.new("ops", admin=True)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = start_collector(tmp_path_factory.mktemp("metrics-keys") / "store", metrics={"endpoint": "127.0.0.1:0"},
                              **auth_overrides(ACME, ADMIN))
    try:
        yield running
    finally:
        running.collector.stop()


def listeners(running: RunningCollector) -> list[str]:
    return [running.query_endpoint, f"127.0.0.1:{running.collector.metrics_server.port}"]


@pytest.mark.parametrize("key, status, says", [
    (None, 401, "missing API key"),
    ("not-a-key", 401, "API key not recognised"),
    (ACME.key, 403, "need an admin key"),
])
def test_metrics_need_an_admin_key_like_stats(keyed: RunningCollector, key: str | None, status: int,
                                               says: str) -> None:
    for endpoint in listeners(keyed):
        answer, body, _ = get(endpoint, "/metrics", key)
        assert (answer, says in body) == (status, True), (endpoint, body)
        assert "otelcol" not in body
    assert get(keyed.query_endpoint, "/stats", key)[0] == status  # the same rule as /stats


def test_an_admin_key_reads_the_same_numbers_on_both_listeners(keyed: RunningCollector) -> None:
    on_query, on_listener = (scrape(endpoint, ADMIN.key) for endpoint in listeners(keyed))
    counters = stats(keyed.query_endpoint, ADMIN.key)
    for samples in (on_query, on_listener):
        assert value(samples, "otelcol_exporter_sent_spans_total") == counters["writer_spans_written_total"]
        assert value(samples, "spanhouse_redaction_hits_total", rule="jwt", kind="credential") == 0


def test_health_and_ready_need_no_key(keyed: RunningCollector) -> None:
    for endpoint in listeners(keyed):
        assert get(endpoint, "/health")[:2] == (200, "ok\n")
        assert get(endpoint, "/ready")[:2] == (200, "ready\n")


def test_the_scrape_listener_serves_nothing_else(keyed: RunningCollector) -> None:
    endpoint = listeners(keyed)[1]
    for path in ("/stats", "/query", "/flush", "/metrics/../stats"):
        status, body, _ = get(endpoint, path, ADMIN.key)
        assert status == 404 and "use GET /metrics, /health or /ready" in body


def test_the_scrape_listener_may_listen_on_ipv6_loopback() -> None:
    from types import SimpleNamespace

    from spanhouse.collector.config import Config
    from spanhouse.collector.metrics.http import MetricsEndpoint, MetricsServer

    stand_in = SimpleNamespace(config=Config(), pipeline=None, spool=None, store=None, stopping=True)
    server = MetricsServer(MetricsEndpoint(stand_in), "[::1]:0")
    server.start()
    try:
        assert get(f"[::1]:{server.port}", "/health")[:2] == (200, "ok\n")
        assert get(f"[::1]:{server.port}", "/ready")[:2] == (503, "not ready: the collector is stopping\n")
    finally:
        server.stop()


def test_a_taken_scrape_port_names_the_option() -> None:
    import socket

    from spanhouse.collector.component import ListenError
    from spanhouse.collector.config import Config
    from spanhouse.collector.metrics.http import MetricsEndpoint, MetricsServer

    stand_in = type("StandIn", (), {"config": Config()})()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ListenError, match=r"cannot listen for metrics on 127\.0\.0\.1:\d+: .*metrics\.endpoint"):
            MetricsServer(MetricsEndpoint(stand_in), f"127.0.0.1:{taken.getsockname()[1]}")
