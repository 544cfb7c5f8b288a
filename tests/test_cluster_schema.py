"""The cluster schema (collector/store/cluster.py): golden SQL, every statement parsed by the engine,
the sharding and replication rules, store.cluster validation and `spanhouse migrate --print`.

No multi-node ClickHouse runs here: statements are parsed with formatQuery, never executed. To accept a
deliberate change of the rendered SQL, regenerate and review the diff:

    SPANHOUSE_UPDATE_GOLDEN=1 python -m pytest tests/test_cluster_schema.py
"""

from __future__ import annotations

import io
import os
import re
import xml.etree.ElementTree as ET
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from spanhouse.collector import cli
from spanhouse.collector import config as config_mod
from spanhouse.collector.config import ConfigError
from spanhouse.collector.store import Store
from spanhouse.collector.config import Config
from spanhouse.collector.store import StoreError
from spanhouse.collector.store.cluster import (ClusterSchemaError, check_cluster_schema, migrations_record,
                                               render_migrations, render_sql, render_statement,
                                               retention_days, retention_statements,
                                               truncate_statement)

GOLDEN = Path(__file__).parent / "golden" / "cluster"
UPDATE = os.environ.get("SPANHOUSE_UPDATE_GOLDEN") == "1"
CLUSTER = "spanhouse_cluster"
RENDERED = render_migrations(CLUSTER)
STATEMENTS = [s for m in RENDERED for s in m.statements]
SYSTEM_LOGS = Path(__file__).parent.parent / "deploy" / "clickhouse" / "config.d" / "spanhouse-system-logs.xml"


@pytest.mark.parametrize("migration", RENDERED, ids=lambda m: m.file_name)
def test_rendered_migration_matches_the_golden_file(migration) -> None:
    expected = GOLDEN / migration.file_name
    if UPDATE:
        expected.write_text(migration.text(), encoding="utf-8")
    assert migration.text() == expected.read_text(encoding="utf-8"), (
        f"{migration.file_name}: the cluster SQL changed; if intended, regenerate with SPANHOUSE_UPDATE_GOLDEN=1")


def test_every_golden_file_is_a_migration() -> None:
    assert sorted(p.name for p in GOLDEN.glob("*.sql")) == sorted(m.file_name for m in RENDERED)


def test_the_engine_parses_every_rendered_statement(store: Store) -> None:
    extra = (migrations_record(CLUSTER) + retention_statements(CLUSTER, retention_days(Config().retention))
             + [truncate_statement("model_prices", CLUSTER)])
    for statement in STATEMENTS + extra:
        try:
            (formatted,), = store.query_rows("SELECT formatQuery({q:String})", {"q": statement})
        except Exception as exc:
            pytest.fail(f"the engine cannot parse:\n{statement}\n{exc}")
        assert f"ON CLUSTER {CLUSTER}" in formatted or formatted.startswith("INSERT INTO spanhouse_migrations")
    with pytest.raises(Exception):  # the check above can fail: a broken statement is refused
        store.query_rows("SELECT formatQuery({q:String})", {"q": "CREATE TABLE t ON CLUSTER ENGINE = ("})


def test_the_collector_accepts_a_store_only_with_every_migration_recorded(store: Store) -> None:
    store.check_cluster_schema("c1")  # the fixture's store ran every migration
    versions = {int(v) for (v,) in store.query_rows("SELECT Version FROM spanhouse_migrations")}
    with pytest.raises(StoreError, match=r"store.cluster is 'c1' but the store lacks migrations 010_alerts: "
                                         r"print the cluster schema with `spanhouse migrate"):
        check_cluster_schema(versions - {10}, "c1")


def test_the_record_lists_every_migration_with_its_checksum(store: Store) -> None:
    _, insert = migrations_record(CLUSTER)
    recorded = store.query_rows("SELECT Version, Checksum FROM spanhouse_migrations ORDER BY Version")
    for version, checksum in recorded:
        assert f"({version}, '" in insert and f"'{checksum}')" in insert


def test_spans_and_calls_shard_by_trace_id() -> None:
    for table in ("spans", "genai_calls", "trace_costs", "spans_trace_id_ts"):
        (create,) = [s for s in STATEMENTS if s.startswith(f"CREATE TABLE IF NOT EXISTS {table} ")]
        assert create.endswith(f"ENGINE = Distributed({CLUSTER}, currentDatabase(), {table}_local, "
                               "cityHash64(TraceId))"), create


def test_every_statement_runs_on_the_cluster() -> None:
    for statement in STATEMENTS:
        assert re.match(rf"^(CREATE|ALTER|DROP) \w+(?: \w+)*? ON CLUSTER {CLUSTER}\b", statement), statement


def test_no_plain_merge_tree_remains() -> None:
    engines = [m.group(1) for s in STATEMENTS for m in re.finditer(r"ENGINE = (\w+)", s)]
    assert engines and all(e.startswith("Replicated") or e == "Distributed" for e in engines), engines
    for statement in STATEMENTS:
        if "Replicated" in statement:
            assert "('/clickhouse/tables/{shard}/{database}/{table}', '{replica}'" in statement


def test_every_table_is_a_local_replicated_table_plus_a_distributed_one() -> None:
    created = dict(re.findall(r"^CREATE TABLE IF NOT EXISTS (\w+) ON CLUSTER \w+\s.*?ENGINE = (\w+)",
                              "\n\n".join(STATEMENTS), re.S | re.M))
    for table, engine in created.items():
        if table.endswith("_local"):
            assert engine.startswith("Replicated") and created[table.removesuffix("_local")] == "Distributed"
        else:
            assert engine == "Distributed" and created[f"{table}_local"].startswith("Replicated")


def test_materialized_views_read_and_write_local_tables() -> None:
    views = [s for s in STATEMENTS if s.startswith("CREATE MATERIALIZED VIEW")]
    assert len(views) == 4
    for view in views:
        assert re.search(r" TO \w+_local AS\n", view), view
        assert re.search(r"^FROM (\w+)_local AS \1$", view, re.M), view


def test_plain_views_read_the_distributed_tables() -> None:
    views = [s for s in STATEMENTS if s.startswith("CREATE VIEW")]
    assert {re.match(r"CREATE VIEW IF NOT EXISTS (\w+)", v).group(1) for v in views} == {
        "otel_traces", "otel_traces_trace_id_ts"}
    assert all(re.search(r"^FROM spans$", v, re.M) for v in views)


def test_replacing_merge_tree_keeps_its_version_argument() -> None:
    statement = "CREATE TABLE IF NOT EXISTS alerts\n(\n    V UInt64\n)\nENGINE = ReplacingMergeTree(V)\nORDER BY V"
    local, distributed = render_statement(statement, "c1")
    assert ("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', "
            "'{replica}', V)") in local
    assert distributed.startswith("CREATE TABLE IF NOT EXISTS alerts ON CLUSTER c1 AS alerts_local")


def test_a_table_without_a_sharding_key_is_refused() -> None:
    with pytest.raises(ClusterSchemaError, match="no sharding key"):
        render_statement("CREATE TABLE IF NOT EXISTS mystery\n(\n    x UInt8\n)\nENGINE = MergeTree\nORDER BY x", "c")


@pytest.mark.parametrize("name", ["1cluster", "a-b", "x; DROP TABLE spans", "", "a b", "é", "x" * 65])
def test_a_bad_cluster_name_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="store.cluster"):
        config_mod.load(overrides={"store": {"url": "http://u:p@ch:8123/db", "cluster": name or " "}})


def test_a_cluster_needs_a_server_store() -> None:
    with pytest.raises(ConfigError, match=r"store.cluster: 'prod' needs a ClickHouse server store"):
        config_mod.load(overrides={"store": {"url": "chdb:///tmp/x", "cluster": "prod"}})


def test_a_cluster_with_a_server_store_is_accepted() -> None:
    for url in ("http://u:p@ch:8123/db", "https://ch.example:8443/db"):
        assert config_mod.load(overrides={"store": {"url": url, "cluster": "prod_1"}}).store.cluster == "prod_1"


def test_cli_print_is_the_renderer_output(tmp_path: Path) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["migrate", "--cluster", CLUSTER, "--print"]) == 0
    assert out.getvalue() == render_sql(CLUSTER, retention_days(Config().retention))
    config = tmp_path / "c.yaml"
    config.write_text("store:\n  url: http://u:p@ch:8123/db\n  cluster: from_config\n"
                      "retention:\n  spans_days: 3\n  rollups_days: 0\n", encoding="utf-8")
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["migrate", "--config", str(config), "--print"]) == 0
    printed = out.getvalue()
    assert printed == render_sql("from_config", retention_days(config_mod.load(config).retention))
    assert "ALTER TABLE spans_local ON CLUSTER from_config MODIFY TTL toDateTime(Timestamp) + toIntervalDay(3);" in printed
    assert "ALTER TABLE genai_usage_1h_local ON CLUSTER from_config REMOVE TTL;" in printed


def test_cli_without_a_cluster_or_print_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["migrate", "--print", "--store", "http://u:p@ch:8123/db"]) == 2
    assert "pass --cluster NAME or set store.cluster" in capsys.readouterr().err
    assert cli.main(["migrate", "--cluster", "prod"]) == 2
    assert "only --print is supported" in capsys.readouterr().err
    assert cli.main(["migrate", "--cluster", "no-dash", "--print"]) == 2
    assert "not a ClickHouse identifier" in capsys.readouterr().err


def test_system_log_tables_have_a_ttl() -> None:
    root = ET.parse(SYSTEM_LOGS).getroot()
    expected = {"query_log", "query_thread_log", "query_views_log", "trace_log", "part_log", "metric_log",
                "asynchronous_metric_log", "text_log", "processors_profile_log", "opentelemetry_span_log",
                "error_log", "asynchronous_insert_log", "backup_log",
                "blob_storage_log", "latency_log", "query_metric_log"}
    found = {child.tag for child in root}
    assert expected <= found, expected - found
    for child in root:
        ttl = child.findtext("ttl")
        assert ttl and re.fullmatch(r"event_date \+ INTERVAL \d+ DAY DELETE", ttl.strip()), (child.tag, ttl)


def test_prices_are_truncated_on_every_shard() -> None:
    assert truncate_statement("model_prices") == "TRUNCATE TABLE model_prices"
    assert truncate_statement("model_prices", "c1") == "TRUNCATE TABLE model_prices_local ON CLUSTER c1"
