"""Worker processes on one port (receiver.processes): spans from several SDK clients stored once with their
keys' tenants, calls priced and rolled up, counters summed, bad requests refused as by one process."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


from access_harness import Key, auth_overrides, export, span_request
from collector_harness import RunningCollector, start_collector
from durability_helpers import wait_until

ACME = Key.new("acme")
GLOBEX = Key.new("globex")
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]  # not the connection other channels share


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = start_collector(tmp_path_factory.mktemp("workers") / "store", receiver={"processes": 2},
                              **auth_overrides(ACME, GLOBEX))
    try:
        yield running
    finally:
        running.collector.stop()


def sdk_chat_spans(endpoint: str, key: Key, service: str, count: int, exporter_class: Any = OTLPSpanExporter,
                   ) -> SpanExportResult:
    """`count` chat spans with token usage, made and exported by the real SDK and OTLP exporter (gRPC default)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("workers-test")
    for i in range(count):
        with tracer.start_as_current_span("chat gpt-4o", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 1000 + i, "gen_ai.usage.output_tokens": 10}):
            pass
    headers = {"authorization": f"Bearer {key.key}"}
    exporter = (OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10, headers=headers)
                if exporter_class is OTLPSpanExporter else exporter_class(endpoint=endpoint, timeout=10, headers=headers))
    try:
        return exporter.export(memory.get_finished_spans())
    finally:
        exporter.shutdown()
        provider.shutdown()


def test_spans_from_several_sdk_clients_are_stored_once_with_their_keys_tenants(
        two_workers: RunningCollector) -> None:
    clients = [(ACME, "shop", 40), (GLOBEX, "search", 25), (ACME, "billing", 30), (GLOBEX, "mail", 15)]
    with futures.ThreadPoolExecutor(len(clients)) as pool:
        results = list(pool.map(lambda c: sdk_chat_spans(two_workers.grpc_endpoint, *c), clients))
    assert results == [SpanExportResult.SUCCESS] * len(clients)
    rows = two_workers.query("SELECT ServiceName, TenantId, count(), uniqExact(SpanId) FROM spans "
                             "WHERE ServiceName IN ('shop', 'search', 'billing', 'mail') "
                             "GROUP BY ServiceName, TenantId ORDER BY ServiceName")
    assert rows == [("billing", "acme", 30, 30), ("mail", "globex", 15, 15),
                    ("search", "globex", 25, 25), ("shop", "acme", 40, 40)]
    calls = two_workers.query("SELECT TenantId, count(), sum(InputTokens), round(sum(CostTotal), 6) "
                              "FROM genai_calls WHERE ServiceName IN ('shop', 'search', 'billing', 'mail') "
                              "GROUP BY TenantId ORDER BY TenantId")
    acme_tokens = sum(1000 + i for i in range(40)) + sum(1000 + i for i in range(30))
    globex_tokens = sum(1000 + i for i in range(25)) + sum(1000 + i for i in range(15))
    assert [c[:3] for c in calls] == [("acme", 70, acme_tokens), ("globex", 40, globex_tokens)]
    assert all(c[3] > 0 for c in calls), f"workers price the calls: {calls}"
    rollup = two_workers.query("SELECT TenantId, sum(Calls), sum(InputTokens), round(sum(CostTotal), 6) "
                               "FROM genai_usage_1m WHERE ServiceName IN ('shop', 'search', 'billing', 'mail') "
                               "GROUP BY TenantId ORDER BY TenantId")
    assert rollup == calls


def test_otlp_http_is_served_by_the_collector_process_with_the_whole_pipeline(two_workers: RunningCollector) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    result = sdk_chat_spans(two_workers.collector.http_url, GLOBEX, "over-http", 12, HttpSpanExporter)
    assert result == SpanExportResult.SUCCESS
    rows = two_workers.query("SELECT TenantId, count(), countIf(CostTotal > 0) FROM genai_calls "
                             "WHERE ServiceName = 'over-http' GROUP BY TenantId")
    assert rows == [("globex", 12, 12)]


def test_stats_sum_the_workers_counters(two_workers: RunningCollector) -> None:
    counters = two_workers.collector.counters
    assert counters()["workers"] == 2 and counters()["workers_running"] == 2
    # Each client on its own connection, so both workers are likely to serve some.
    for _ in range(6):
        export(two_workers.grpc_endpoint, span_request("stats-app", 7), metadata=ACME.metadata,
               options=OWN_CONNECTION)
    with pytest.raises(grpc.RpcError):
        export(two_workers.grpc_endpoint, span_request("stats-app", 1))  # no key
    ((stored,),) = two_workers.query("SELECT count() FROM spans")
    assert stored >= 42
    wait_until(lambda: counters()["spans_accepted_total"] == stored
               and counters().get("receiver_unauthenticated_total", 0) >= 1,
               what="the workers' counters in /stats")
    assert counters()["writer_spans_written_total"] == stored  # the collector process's own, beside the workers'


def test_bad_requests_are_refused_by_the_workers_as_by_one_process(two_workers: RunningCollector) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        export(two_workers.grpc_endpoint, span_request("no-key", 3))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with grpc.insecure_channel(two_workers.grpc_endpoint, options=OWN_CONNECTION) as channel:
        call = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as garbage:
            call(b"\xff\xff\xff not protobuf", metadata=ACME.metadata, timeout=30)
    assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert garbage.value.details()
    # One span over the attribute limit is refused in partial_success, the others are stored.
    response = export(two_workers.grpc_endpoint,
                      span_request("partial-app", 3, attributes_per_span=[0, 2000, 0]), metadata=GLOBEX.metadata)
    assert response.partial_success.rejected_spans == 1
    assert "attributes" in response.partial_success.error_message
    assert two_workers.query("SELECT count() FROM spans WHERE ServiceName = 'partial-app'") == [(2,)]
    assert two_workers.query("SELECT count() FROM spans WHERE ServiceName = 'no-key'") == [(0,)]




def test_one_scrape_sums_the_workers_like_stats_does(two_workers: RunningCollector) -> None:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        # This collector has no admin key: read the same registry GET /metrics renders.
        text = generate_latest(two_workers.collector.metrics.registry).decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
        return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))

    for _ in range(4):  # each client on its own connection, so both workers are likely to serve some
        assert sdk_chat_spans(two_workers.grpc_endpoint, GLOBEX, "scraped-app", 5) is SpanExportResult.SUCCESS
    ((stored, input_tokens),) = two_workers.query(
        "SELECT count(), sum(InputTokens) FROM genai_calls WHERE ServiceName = 'scraped-app'")
    assert stored == 20
    counters = two_workers.collector.counters

    def settled() -> bool:  # workers report every second
        samples = scrape()
        now = counters()
        return (total(samples, "otelcol_receiver_accepted_spans_total", transport="grpc")
                == now["receiver_spans_accepted_total"] >= 20
                and total(samples, "otelcol_receiver_accepted_spans_total")
                == now["receiver_spans_accepted_total"] + now["receiver_http_spans_accepted_total"]
                == now["spans_accepted_total"]
                and total(samples, "spanhouse_genai_calls_total", service="scraped-app") == 20)

    wait_until(settled, what="the workers' counts in one scrape")
    samples = scrape()
    assert total(samples, "spanhouse_genai_tokens_total", service="scraped-app", kind="input",
                 tenant="globex") == input_tokens
    assert total(samples, "otelcol_processor_incoming_items_total", processor="price") == \
        counters()["processor_price_incoming_items_total"] >= 20
    assert total(samples, "spanhouse_workers_running") == 2
    assert total(samples, "otelcol_process_memory_rss") > total(samples, "spanhouse_workers") * (10 << 20)
