"""ServiceVersion and DeploymentEnvironment: copied from the resource at normalize, kept consistent by redact,
added to an existing store with rows by migration 013."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from redaction_helpers import batch_of, span_row

from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.config import RedactionConfig
from spanhouse.collector.processors.normalize import NormalizeProcessor
from spanhouse.collector.processors.redact import RedactProcessor
from spanhouse.collector.store import Store, available_migrations, split_statements
from spanhouse.collector.store import client as store_client

CHAT = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}


def normalized(resources: list[dict[str, str]], attributes: list[dict[str, str]] | None = None) -> SpanBatch:
    spans = attributes or [dict(CHAT) for _ in resources]
    return NormalizeProcessor().process(SpanBatch({"SpanAttributes": spans, "ResourceAttributes": resources},
                                                  len(resources)))


@pytest.mark.parametrize(("resource", "version", "environment"), [
    ({"service.version": "1.4.2", "deployment.environment.name": "production"}, "1.4.2", "production"),
    ({"deployment.environment": "staging"}, "", "staging"),  # the older attribute name
    # Both names: the current one wins.
    ({"deployment.environment.name": "prod", "deployment.environment": "old"}, "", "prod"),
    ({"deployment.environment.name": "", "deployment.environment": "old"}, "", "old"),  # empty is absent
    ({"service.name": "checkout"}, "", ""),
    ({}, "", ""),
])
def test_normalize_copies_version_and_environment_from_the_resource(resource: dict[str, str], version: str,
                                                                    environment: str) -> None:
    batch = normalized([resource])
    assert batch["ServiceVersion"] == [version] and batch["DeploymentEnvironment"] == [environment]


def test_every_span_gets_its_own_resource_values_genai_or_not() -> None:
    canary = {"service.version": "1.1"}
    stable = {"service.version": "1.0"}
    # Spans of one resource share its dict, as decode hands them over; a plain span is filled too.
    batch = normalized([canary, canary, stable, canary], [CHAT, {"http.route": "/"}, CHAT, CHAT])
    assert batch["ServiceVersion"] == ["1.1", "1.1", "1.0", "1.1"]
    assert batch["Operation"] == ["chat", "", "chat", "chat"]


def test_a_batch_without_resource_attributes_keeps_the_defaults() -> None:
    batch = NormalizeProcessor().process(SpanBatch({"SpanAttributes": [dict(CHAT)]}, 1))
    assert batch.column("ServiceVersion") == [""] and batch.column("DeploymentEnvironment") == [""]


def redacted(config: RedactionConfig, resource: dict[str, str]) -> dict[str, object]:
    batch = normalized([resource])
    row = span_row(dict(CHAT), ResourceAttributes=resource, ServiceVersion=batch["ServiceVersion"][0],
                   DeploymentEnvironment=batch["DeploymentEnvironment"][0])
    out = batch_of(row)
    RedactProcessor(config).process(out)
    return {name: values[0] for name, values in out.columns.items()}


def test_redaction_reaches_the_copies_as_it_reaches_the_resource() -> None:
    # A key rule on either name of the environment empties the copy, as it drops the attribute.
    for key in ("deployment.environment", "deployment.environment.name"):
        row = redacted(RedactionConfig(drop_keys=[key]), {"deployment.environment": "eu-prod"})
        assert row["DeploymentEnvironment"] == "" and key not in row["ResourceAttributes"]
    # A value detector redacts the copy too (an e-mail address someone put in the version).
    row = redacted(RedactionConfig(), {"service.version": "build-by-jane.doe@example.com"})
    assert "jane.doe@example.com" not in str(row["ServiceVersion"])
    assert row["ServiceVersion"] == row["ResourceAttributes"]["service.version"]
    # The allow-list applies to span attributes only: resource attributes and their copies stay.
    row = redacted(RedactionConfig(allow_keys=["gen_ai.*"]), {"service.version": "2.0",
                                                              "deployment.environment.name": "prod"})
    assert (row["ServiceVersion"], row["DeploymentEnvironment"]) == ("2.0", "prod")


def test_a_store_at_migration_010_with_rows_gains_the_columns(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"chdb://{tmp_path / 'store'}"
    every = available_migrations()
    assert any(v == 13 for v, _, _ in every)
    before = [m for m in every if m[0] <= 10]
    now_ns = time.time_ns()
    with monkeypatch.context() as patched:
        patched.setattr(store_client, "available_migrations", lambda: before)
        old = Store.open(url)
        try:
            old.migrate()
            assert "ServiceVersion" not in old.column_types("genai_calls")
            old.insert("spans", [["acme"] * 2, [now_ns] * 2, ["a" * 32] * 2, ["b" * 15 + "1", "b" * 15 + "2"],
                                 [{"service.version": "0.9"}] * 2],
                       ["TenantId", "Timestamp", "TraceId", "SpanId", "ResourceAttributes"])
            old.insert("genai_calls", [["acme"], [now_ns], ["a" * 32], ["b" * 15 + "1"], ["chat"], [1_000_000]],
                       ["TenantId", "Timestamp", "TraceId", "SpanId", "Operation", "Duration"])
        finally:
            old.close()

    current = Store.open(url)
    try:
        applied = current.migrate()
        assert "013_service_version" in applied
        for table in ("spans", "genai_calls"):
            types = current.column_types(table)
            assert types["ServiceVersion"] == types["DeploymentEnvironment"] == "LowCardinality(String)"
        # Old rows are intact and read '' in the new columns; new rows store their values.
        assert current.query_rows("SELECT SpanId, ServiceVersion, DeploymentEnvironment FROM spans ORDER BY SpanId") \
            == [("b" * 15 + "1", "", ""), ("b" * 15 + "2", "", "")]
        assert current.query_rows("SELECT Operation, Duration, ServiceVersion FROM genai_calls") == [
            ("chat", 1_000_000, "")]
        current.insert("genai_calls", [["acme"], [now_ns], ["c" * 32], ["d" * 16], ["chat"], ["1.1"], ["prod"]],
                       ["TenantId", "Timestamp", "TraceId", "SpanId", "Operation", "ServiceVersion",
                        "DeploymentEnvironment"])
        assert current.query_rows("SELECT ServiceVersion, DeploymentEnvironment, count() FROM genai_calls "
                                  "GROUP BY ALL ORDER BY ALL") == [("", "", 1), ("1.1", "prod", 1)]
        assert current.migrate() == []
        # Re-running the statements on the upgraded store changes nothing (ADD COLUMN IF NOT EXISTS).
        for statement in split_statements({v: t for v, _, t in every}[13]):
            current.command(statement)
        assert current.query_rows("SELECT count() FROM genai_calls") == [(2,)]
    finally:
        current.close()
