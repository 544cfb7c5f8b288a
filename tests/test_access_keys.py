"""API keys on OTLP/gRPC: tenant stamping with the real SDK exporter, refusals, no keys in logs, config errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanhouse.collector import cli
from spanhouse.collector import config as config_mod
from spanhouse.collector.config import ConfigError

from access_harness import Key, auth_overrides, export, span_request
from collector_harness import RunningCollector, start_collector

ACME = Key.new("acme")
GLOBEX = Key.new("globex")
ADMIN = Key.new("ops", admin=True)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = start_collector(tmp_path_factory.mktemp("keys") / "store", **auth_overrides(ACME, GLOBEX, ADMIN))
    try:
        yield running
    finally:
        running.collector.stop()


def sdk_export(endpoint: str, service: str, count: int, headers: dict[str, str] | None) -> SpanExportResult:
    """Make `count` spans with the real SDK and export them with the real OTLP/gRPC exporter."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service, "tenant.id": "globex"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("access-test")
    for i in range(count):
        with tracer.start_as_current_span(f"{service}-{i}") as span:
            span.set_attribute("gen_ai.request.model", "gpt-4o")
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, headers=headers, timeout=10)
    try:
        return exporter.export(memory.get_finished_spans())
    finally:
        exporter.shutdown()
        provider.shutdown()


def tenants_of(running: RunningCollector, service: str) -> dict[str, int]:
    return dict(running.query("SELECT TenantId, count() FROM spans WHERE ServiceName = {s:String} GROUP BY TenantId",
                              {"s": service}))


def test_each_key_stamps_its_tenant_on_every_span(keyed: RunningCollector) -> None:
    assert sdk_export(keyed.grpc_endpoint, "acme-app", 3, {"authorization": f"Bearer {ACME.key}"}) \
        == SpanExportResult.SUCCESS
    assert sdk_export(keyed.grpc_endpoint, "globex-app", 2, {"authorization": f"Bearer {GLOBEX.key}"}) \
        == SpanExportResult.SUCCESS
    # The resource claims tenant globex; only the key decides.
    assert tenants_of(keyed, "acme-app") == {"acme": 3}
    assert tenants_of(keyed, "globex-app") == {"globex": 2}


def test_wrong_key_with_the_sdk_exporter_fails_and_stores_nothing(keyed: RunningCollector) -> None:
    result = sdk_export(keyed.grpc_endpoint, "intruder-app", 2, {"authorization": "Bearer shk_guess"})
    assert result == SpanExportResult.FAILURE
    assert tenants_of(keyed, "intruder-app") == {}


@pytest.mark.parametrize("metadata, reason", [
    (None, "missing API key: send `authorization: Bearer <API key>`"),
    ((("authorization", "Bearer shk_not-a-configured-key"),), "API key not recognised"),
    ((("authorization", f"Bearer {ACME.key}x"),), "API key not recognised"),
    ((("authorization", ACME.key),), "malformed authorization: expected `Bearer <API key>`"),
    ((("authorization", f"Basic {ACME.key}"),), "malformed authorization"),
    ((("authorization", "Bearer "),), "malformed authorization"),
    ((("authorization", f"Bearer {ACME.key}"), ("authorization", f"Bearer {GLOBEX.key}")),
     "send exactly one `authorization` metadata entry"),
], ids=["missing", "unknown", "one-char-off", "no-scheme", "basic", "empty", "two-keys"])
def test_bad_credentials_are_unauthenticated_and_nothing_is_stored(
        keyed: RunningCollector, metadata: Any, reason: str) -> None:
    service = f"refused-{abs(hash(reason)) % 10**8}-{len(metadata or ())}"
    with pytest.raises(grpc.RpcError) as info:
        export(keyed.grpc_endpoint, span_request(service, 2), metadata=metadata)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason in info.value.details()
    assert tenants_of(keyed, service) == {}


def test_bearer_scheme_is_case_insensitive(keyed: RunningCollector) -> None:
    export(keyed.grpc_endpoint, span_request("lowercase-bearer", 1), metadata=(("authorization", f"bearer {ACME.key}"),))
    assert tenants_of(keyed, "lowercase-bearer") == {"acme": 1}


def test_refusals_are_counted_in_stats(keyed: RunningCollector) -> None:
    from access_harness import http

    def refused() -> int:
        status, body = http(keyed.query_endpoint, "/stats", key=ADMIN.key)
        assert status == 200
        import json
        return json.loads(body)["receiver_unauthenticated_total"]

    before = refused()
    with pytest.raises(grpc.RpcError):
        export(keyed.grpc_endpoint, span_request("counted", 1))
    assert refused() == before + 1


def test_keys_never_reach_the_logs(keyed: RunningCollector, caplog: pytest.LogCaptureFixture,
                                   capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyed.collector.receiver.refusals, "interval_s", 0.0)  # log every refusal here
    wrong = "shk_wrong-key-that-must-not-be-logged"
    with caplog.at_level(logging.DEBUG):
        export(keyed.grpc_endpoint, span_request("logged-ok", 1), metadata=ACME.metadata)
        for metadata in ((("authorization", f"Bearer {wrong}"),), (("authorization", wrong),)):
            with pytest.raises(grpc.RpcError) as info:
                export(keyed.grpc_endpoint, span_request("logged-bad", 1), metadata=metadata)
            assert wrong not in info.value.details()
        sdk_export(keyed.grpc_endpoint, "logged-sdk", 1, {"authorization": f"Bearer {wrong}"})
        keyed.flush()
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert "refused OTLP export" in caplog.text  # the refusals were logged...
    for secret in (wrong, ACME.key, ACME.key[4:], wrong[4:]):
        assert secret not in logged  # ...without the keys


def test_a_flood_of_refusals_is_counted_but_logged_once_per_reason(
        keyed: RunningCollector, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    refusals = keyed.collector.receiver.refusals
    monkeypatch.setattr(refusals, "interval_s", 3600.0)
    monkeypatch.setattr(refusals, "_logged_at", {})
    before = refusals.total
    with caplog.at_level(logging.WARNING, logger="spanhouse.receiver.grpc"):
        for i in range(20):
            with pytest.raises(grpc.RpcError):
                export(keyed.grpc_endpoint, span_request("flood", 1),
                       metadata=(("authorization", f"Bearer shk_flood-{i}"),) if i % 2 else None)
    assert refusals.total == before + 20
    lines = [r.getMessage() for r in caplog.records if "refused OTLP export" in r.getMessage()]
    assert len(lines) == 2, lines
    assert any("missing API key" in line for line in lines) and any("not recognised" in line for line in lines)


# --- configuration -------------------------------------------------------------------------------------


def load(tree: dict[str, Any]) -> config_mod.Config:
    return config_mod.load(None, environ={}, overrides=tree)


def test_raw_key_pasted_as_hash_is_refused_without_echoing_it() -> None:
    raw = "shk_this-is-the-raw-key-not-its-hash"
    with pytest.raises(ConfigError) as info:
        load({"auth": {"keys": [{"tenant": "acme", "key_sha256": raw}]}})
    message = str(info.value)
    assert "auth.keys[0].key_sha256: expected the 64 hex characters printed by `spanhouse hash-key`" in message
    assert raw not in message


@pytest.mark.parametrize("keys, message", [
    ([{"tenant": "", "key_sha256": "a" * 64}], "auth.keys[0].tenant: tenant id must be 1-64 letters"),
    ([{"tenant": "acme'; DROP", "key_sha256": "a" * 64}], "auth.keys[0].tenant: tenant id must be"),
    ([{"tenant": "acme", "key_sha256": "a" * 64}, {"tenant": "globex", "key_sha256": "A" * 64}],
     "the same key is configured twice (second time for tenant 'globex')"),
    ([{"tenant": "acme", "key_sha": "a" * 64}], "auth.keys[0].key_sha: unknown option (did you mean"),
    ("not-a-list", "auth.keys: expected a list"),
])
def test_bad_keys_are_refused_naming_the_entry(keys: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load({"auth": {"keys": keys}})
    assert message in str(info.value)


def test_keys_file_adds_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(f"- tenant: acme\n  key_sha256: {ACME.config()['key_sha256']}\n"
                    f"- tenant: ops\n  key_sha256: {ADMIN.config()['key_sha256']}\n  admin: true\n")
    from spanhouse.collector.auth import KeyRing

    ring = KeyRing.from_config(load({"auth": {"keys_file": str(path)}}).auth)
    assert ring.authenticate(f"Bearer {ACME.key}").tenant == "acme"
    assert ring.authenticate(f"Bearer {ADMIN.key}").admin


@pytest.mark.parametrize("text, message", [
    (None, "auth.keys_file: cannot read"),
    ("", "holds no keys; every caller would be refused"),
    ("keys: [unclosed\n", "is not valid YAML"),
    ("acme: 123\n", "must hold a list of keys"),
    ("- tenant: acme\n  key_sha256: short\n", "entry 0.key_sha256: expected the 64 hex characters"),
])
def test_bad_keys_file_stops_start_up(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "keys.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load({"auth": {"keys_file": str(path)}})
    assert message in str(info.value)


# --- listening beyond loopback -------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["0.0.0.0:4317", "[::]:4317", "10.1.2.3:4317", "collector.internal:4317"])
def test_non_loopback_without_keys_is_refused_and_says_why(endpoint: str) -> None:
    with pytest.raises(ConfigError) as info:
        load({"receiver": {"grpc": {"endpoint": endpoint}}})
    message = str(info.value)
    assert f"refusing to listen on {endpoint} without authentication" in message
    assert "anyone who can reach that address could write spans" in message
    assert "auth.allow_unauthenticated" in message


@pytest.mark.parametrize("tree", [
    {"receiver": {"grpc": {"endpoint": "0.0.0.0:4317"}}, "auth": {"allow_unauthenticated": True}},
    {"receiver": {"grpc": {"endpoint": "0.0.0.0:4317"}}, **auth_overrides(ACME)},
    {"receiver": {"grpc": {"endpoint": "127.0.0.2:4317"}}},
    {"receiver": {"grpc": {"endpoint": "[::1]:4317"}}},
    {"receiver": {"grpc": {"endpoint": "localhost:4317"}}},
], ids=["explicit-opt-out", "keys", "loopback-net", "ipv6-loopback", "localhost"])
def test_loopback_keys_or_explicit_opt_out_may_listen(tree: dict[str, Any]) -> None:
    load(tree)


def test_cli_refuses_a_public_address_without_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["collector", "--grpc", "0.0.0.0:0", "--store", "chdb:///nonexistent/never-opened"])
    assert code == 2
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0:0 without authentication" in err
    assert "--allow-unauthenticated" in err


def test_cli_flag_is_the_explicit_opt_out() -> None:
    args = cli.build_parser().parse_args(["collector", "--grpc", "0.0.0.0:0", "--allow-unauthenticated"])
    cfg = cli._load_config(args)
    assert cfg.auth.allow_unauthenticated and cfg.receiver.grpc.endpoint == "0.0.0.0:0"


def test_hash_key_cli_prints_the_digest_the_config_expects(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(f"{ACME.key}\n"))
    assert cli.main(["hash-key"]) == 0
    digest = capsys.readouterr().out.strip()
    assert digest == ACME.config()["key_sha256"]
    assert cli.main(["hash-key", "--generate"]) == 0
    lines = dict(line.split(":", 1) for line in capsys.readouterr().out.strip().splitlines())
    from spanhouse.collector.auth import KeyRing

    ring = KeyRing.from_config(load({"auth": {"keys": [{"tenant": "t1", "key_sha256": lines["key_sha256"]}]}}).auth)
    assert ring.authenticate(f"Bearer {lines['key'].strip()}").tenant == "t1"


def test_spanhouse_demo_takes_the_key_from_the_otel_and_spanhouse_variables(
        keyed: RunningCollector, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def by_tenant() -> dict[str, int]:
        return dict(keyed.query("SELECT TenantId, count() FROM spans GROUP BY TenantId"))

    before = by_tenant()
    monkeypatch.setenv("SPANHOUSE_STORE__URL", keyed.store_url)
    monkeypatch.setenv("SPANHOUSE_QUERY__ENDPOINT", keyed.query_endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer {GLOBEX.key}")
    monkeypatch.setenv("SPANHOUSE_API_KEY", GLOBEX.key)
    assert cli.main(["demo", "--endpoint", keyed.grpc_endpoint, "--traces", "3"]) == 0
    sent = int(capsys.readouterr().out.split("sent ", 1)[1].split(" spans", 1)[0])
    after = by_tenant()
    assert after["globex"] == before.get("globex", 0) + sent
    assert {t: n for t, n in after.items() if t != "globex"} == {t: n for t, n in before.items() if t != "globex"}
