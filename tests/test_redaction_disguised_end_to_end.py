"""End to end: URL credentials, percent-encoded and full-width secrets, sent over OTLP with the real SDK.

One span per disguised value, holding it in a span attribute, an event attribute,
a resource attribute and the span name. The store is held back while the spans
are acknowledged, so the spool is read with the spans in it; then the rows are
written and every column of every table is searched too.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from test_redaction_end_to_end import _forms, _stored_text

# Credentials in URLs, percent-encoded and full-width values: one span over OTLP, and each one in a
# span attribute, an event attribute, a resource attribute and the span name.
DISGUISED = {
    "url_query_secret": ("https://api.example.com/v1/items?access_token={}&page=2",
                         "tok_live_9f8e7d6c5b4a3f2e1d0c"),
    "url_password": ("https://deploy:{}@git.example.com/repo.git", "Zx9-pass-Q7"),
    "email": ("unsubscribe?email={}", "john%40example.com"),
    "openai_api_key": ("log: {}", "sk%2Dproj%2DAb3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"),
    "credit_card": ("カード {} です", "４１１１ １１１１ １１１１ １１１１"),
    "aws_access_key_id": ("key {}", "ＡＫＩＡＩＯＳＦＯＤＮＮ７ＥＸＡＭＰＬＥ"),
}
# What the disguised values stand for: none of these may be stored in any form either.
PLAIN_FORMS = ("john@example.com", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "4111 1111 1111 1111",
               "AKIAIOSFODNN7EXAMPLE")


def _resource_key(detector: str) -> str:
    # Numbered: a key naming the secret (`*api_key*`, `*secret*`) would be masked whole by the key rules.
    return f"res.value{list(DISGUISED).index(detector)}"


class HeldSink:
    """The store's sink, whose inserts wait until `release` is set: meanwhile the spans sit in the spool."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.release = threading.Event()

    def write(self, batch: Any, token: str | None = None) -> None:
        assert self.release.wait(60), "the test never released the store"
        self.inner.write(batch, token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_disguised_credentials_reach_neither_the_spool_nor_the_store(tmp_path: Path) -> None:
    from collector_harness import start_collector

    from spanhouse.collector.writer import ClickHouseSink

    held: list[HeldSink] = []
    running = start_collector(tmp_path / "store", sink_factory=lambda store: held.append(
        HeldSink(ClickHouseSink(store))) or held[0])
    try:
        texts = {name: template.replace("{}", value) for name, (template, value) in DISGUISED.items()}
        provider = TracerProvider(resource=Resource.create(
            {"service.name": "disguised-e2e", **{_resource_key(name): text for name, text in texts.items()}}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=running.grpc_endpoint,
                                                                        insecure=True)))
        tracer = provider.get_tracer("redaction.e2e")
        for name, text in texts.items():
            span = tracer.start_span(f"GET {text}", attributes={"url.full": text, "detector": name})
            span.add_event("request", {"http.url": text})
            span.end()
        assert provider.force_flush(30_000)
        provider.shutdown()

        # Acknowledged: the spans are in the spool, and the store has not seen them yet.
        spool = b"".join(p.read_bytes() for p in (tmp_path / "store" / "spool").rglob("*") if p.is_file())
        assert "<URL_QUERY_SECRET>".encode() in spool and b"disguised-e2e" in spool  # the records are there
        secrets = [value for _, value in DISGUISED.values()] + list(PLAIN_FORMS)
        assert [s for s in secrets if s.encode() in spool] == []

        held[0].release.set()
        rows = running.query("SELECT SpanName, SpanAttributes['url.full'], SpanAttributes['detector'], "
                             "Events.Attributes[1]['http.url'], ResourceAttributes, "
                             "SpanAttributes['spanhouse.redaction.rules'] FROM spans "
                             "ORDER BY SpanAttributes['detector']")
        assert len(rows) == len(DISGUISED)
        stored = _stored_text(running)
        assert [s for s in secrets for form in _forms(s) if form in stored] == []
        for name_column, url, detector, event_url, resource, rules in rows:
            placeholder = f"<{detector.upper()}>"
            assert placeholder in name_column and placeholder in url and placeholder in event_url
            assert placeholder in resource[_resource_key(detector)]
            assert detector in rules.split(",")
        by_detector = {r[2]: r[1] for r in rows}
        # Only the secret goes: the URL around it stays readable.
        assert by_detector["url_query_secret"] == \
            "https://api.example.com/v1/items?access_token=<URL_QUERY_SECRET>&page=2"
        assert by_detector["credit_card"] == "カード <CREDIT_CARD> です"
        assert by_detector["email"] == "unsubscribe?email=<EMAIL>"
    finally:
        for sink in held:
            sink.release.set()
        running.collector.stop()
