"""The schema migrations rendered for a ClickHouse cluster (shards x replicas).

The same numbered migrations the single-node store runs are rewritten statement by statement:

- every CREATE / ALTER / DROP gets `ON CLUSTER <name>`, so one statement reaches every node;
- each table T becomes `T_local` (the MergeTree family turned Replicated*, one replica set per shard)
  plus a `Distributed` table named T over it, so readers and the collector keep using the names they know;
- materialized views read the *local* source table and write the *local* target table: each shard
  aggregates the rows it holds. spans and genai_calls are sharded by cityHash64(TraceId), so a trace,
  its calls and its trace_costs row live on one shard and per-shard aggregates are whole per trace;
- plain views (otel_traces, ...) and every reader go through the Distributed tables.

Sharding keys are deterministic (no rand()): the writer retries a failed batch with the same
insert_deduplication_token, and a retried block only deduplicates if it lands on the same shard.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from spanhouse.collector.store.errors import split_statements
from spanhouse.collector.store.errors import StoreError
from spanhouse.collector.store.migrations import RETENTION_TIME_EXPR, available_migrations

# A cluster name as ClickHouse's remote_servers section accepts it unquoted in ON CLUSTER.
CLUSTER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

LOCAL_SUFFIX = "_local"
REPLICA_PATH = "'/clickhouse/tables/{shard}/{database}/{table}'"
REPLICA_NAME = "'{replica}'"

# Table -> Distributed sharding key. Every table the migrations create must be named here, so a new
# table cannot reach a cluster without someone deciding how it is spread.
SHARDING_KEYS = {
    # A trace and all its GenAI calls on one shard: trace reads touch one shard's data, and the
    # per-trace views (spans_trace_id_ts, trace_costs) are complete on that shard.
    "spans": "cityHash64(TraceId)",
    "genai_calls": "cityHash64(TraceId)",
    "spans_trace_id_ts": "cityHash64(TraceId)",
    "trace_costs": "cityHash64(TraceId)",
    # Written by the views on each shard; the key only matters for direct inserts. Readers
    # re-aggregate across shards anyway (GROUP BY with sum/merge), as they do across parts.
    "genai_usage_1m": "cityHash64(TenantId, ServiceName, Model)",
    "genai_usage_1h": "cityHash64(TenantId, ServiceName, Model)",
    "model_prices": "cityHash64(Provider, Model)",
    "alerts": "cityHash64(Fingerprint)",
    # Archived content beside its spans; the access log spread by the tenant read.
    "genai_content": "cityHash64(TraceId)",
    "genai_content_access": "cityHash64(TenantId, TraceId)",
}

_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+)\s*\n(.*)$", re.S)
_ENGINE = re.compile(r"ENGINE = (\w*)MergeTree(?:\(([^)]*)\))?")
_CREATE_MV = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+) AS\n(.*)$", re.S)
_FROM = re.compile(r"^FROM (\w+)$", re.M)
_CREATE_VIEW = re.compile(r"^CREATE VIEW IF NOT EXISTS (\w+) AS\n(.*)$", re.S)
_ALTER = re.compile(r"^ALTER TABLE (\w+) (.*)$", re.S)
_CODEC = re.compile(r" CODEC\((?:[^()]|\([^()]*\))*\)")
_DROP = re.compile(r"^DROP (TABLE|VIEW)( IF EXISTS)? (\w+)(.*)$", re.S)


class ClusterSchemaError(ValueError):
    """A migration statement the cluster renderer does not know how to distribute."""


@dataclass(frozen=True)
class RenderedMigration:
    version: int
    name: str
    statements: list[str]

    @property
    def file_name(self) -> str:
        return f"{self.version:03d}_{self.name}.sql"

    def text(self) -> str:
        return "".join(f"{statement};\n\n" for statement in self.statements).rstrip("\n") + "\n"


def check_cluster_name(name: str) -> str:
    """The name, if ClickHouse accepts it as an unquoted identifier in ON CLUSTER; ValueError otherwise."""
    if not isinstance(name, str) or not CLUSTER_NAME.match(name):
        raise ValueError(f"cluster name {name!r} is not a ClickHouse identifier: use letters, digits and "
                         "underscores, not starting with a digit, at most 64 characters (the name of a "
                         "cluster in the server's remote_servers configuration)")
    return name


def render_statement(statement: str, cluster: str) -> list[str]:
    """One migration statement as the statements that do the same on every node of `cluster`."""
    on = f"ON CLUSTER {cluster}"
    if match := _CREATE_TABLE.match(statement):
        table, rest = match.groups()
        if table not in SHARDING_KEYS:
            raise ClusterSchemaError(f"table {table!r} has no sharding key in SHARDING_KEYS: decide how it is spread")
        engine = _ENGINE.search(rest)
        if engine is None:
            raise ClusterSchemaError(f"table {table!r} is not a MergeTree-family table: {statement[:80]!r}")
        family, args = engine.group(1), (engine.group(2) or "").strip()
        replicated = f"ENGINE = Replicated{family}MergeTree({REPLICA_PATH}, {REPLICA_NAME}{', ' + args if args else ''})"
        local = f"CREATE TABLE IF NOT EXISTS {table}{LOCAL_SUFFIX} {on}\n" + rest[:engine.start()] + replicated + \
            rest[engine.end():]
        distributed = (f"CREATE TABLE IF NOT EXISTS {table} {on} AS {table}{LOCAL_SUFFIX}\n"
                       f"ENGINE = Distributed({cluster}, currentDatabase(), {table}{LOCAL_SUFFIX}, "
                       f"{SHARDING_KEYS[table]})")
        return [local, distributed]
    if match := _CREATE_MV.match(statement):
        view, target, select = match.groups()
        sources = _FROM.findall(select)
        if len(sources) != 1:
            raise ClusterSchemaError(f"materialized view {view!r} must read exactly one table, found {sources}")
        source = sources[0]
        # The alias keeps `source.Column` references in the SELECT valid on the local table.
        select = _FROM.sub(f"FROM {source}{LOCAL_SUFFIX} AS {source}", select)
        return [f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view} {on} TO {target}{LOCAL_SUFFIX} AS\n{select}"]
    if match := _CREATE_VIEW.match(statement):
        view, select = match.groups()
        return [f"CREATE VIEW IF NOT EXISTS {view} {on} AS\n{select}"]
    if match := _ALTER.match(statement):
        table, action = match.groups()
        if action.startswith("MODIFY SETTING"):
            # Storage settings exist on the MergeTree tables only. Replicated tables deduplicate retried
            # blocks through the replication log, so the non-replicated window becomes the replicated one.
            action = action.replace("non_replicated_deduplication_window", "replicated_deduplication_window")
            return [f"ALTER TABLE {table}{LOCAL_SUFFIX} {on} {action}"]
        if action.startswith(("ADD COLUMN", "DROP COLUMN", "MODIFY COLUMN", "RENAME COLUMN", "COMMENT COLUMN")):
            # The Distributed table has its own column list: change both, local first. It stores
            # nothing, so it gets the column without the storage codec.
            return [f"ALTER TABLE {table}{LOCAL_SUFFIX} {on} {action}",
                    f"ALTER TABLE {table} {on} {_CODEC.sub('', action)}"]
        return [f"ALTER TABLE {table}{LOCAL_SUFFIX} {on} {action}"]
    if match := _DROP.match(statement):
        kind, if_exists, name, rest = match.groups()
        dropped = [f"DROP {kind}{if_exists or ''} {name} {on}{rest}"]
        if kind == "TABLE" and name in SHARDING_KEYS:
            dropped.append(f"DROP TABLE{if_exists or ''} {name}{LOCAL_SUFFIX} {on}{rest}")
        return dropped
    raise ClusterSchemaError(f"no cluster rendering for statement: {statement[:120]!r}")


def render_migrations(cluster: str) -> list[RenderedMigration]:
    """Every shipped migration rendered for `cluster`, in version order."""
    check_cluster_name(cluster)
    rendered = []
    for version, name, text in available_migrations():
        statements = [out for statement in split_statements(text) for out in render_statement(statement, cluster)]
        rendered.append(RenderedMigration(version, name, statements))
    return rendered


def migrations_record(cluster: str) -> list[str]:
    """The statements that record every migration as applied, in a table replicated to every node.

    The collector, started with store.cluster, reads this table on whichever node it reaches to know the
    schema is in place; its path has no {shard}, so all nodes of the cluster are replicas of one copy.
    """
    check_cluster_name(cluster)
    rows = ", ".join(f"({version}, '{name}', '{hashlib.sha256(text.encode()).hexdigest()}')"
                     for version, name, text in available_migrations())
    return [
        f"CREATE TABLE IF NOT EXISTS spanhouse_migrations ON CLUSTER {cluster}\n"
        "(\n    Version UInt32,\n    Name String,\n    Checksum String,\n    AppliedAt DateTime DEFAULT now()\n)\n"
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/spanhouse_migrations', "
        f"{REPLICA_NAME}, AppliedAt)\nORDER BY Version",
        f"INSERT INTO spanhouse_migrations (Version, Name, Checksum) VALUES {rows}",
    ]


def retention_statements(cluster: str, days_by_table: dict[str, int]) -> list[str]:
    """TTLs of the local tables from the retention settings (0 days: no TTL, rows kept forever)."""
    statements = []
    for table, days in days_by_table.items():
        if table not in RETENTION_TIME_EXPR:
            raise ClusterSchemaError(f"no retention time column known for table {table!r}")
        if days > 0:
            statements.append(f"ALTER TABLE {table}{LOCAL_SUFFIX} ON CLUSTER {cluster} MODIFY TTL "
                              f"{RETENTION_TIME_EXPR[table]} + toIntervalDay({int(days)})")
        else:
            statements.append(f"ALTER TABLE {table}{LOCAL_SUFFIX} ON CLUSTER {cluster} REMOVE TTL")
    return statements


def render_sql(cluster: str, days_by_table: dict[str, int] | None = None) -> str:
    """All migrations for `cluster` as one SQL script, each headed by the migration it comes from, then
    the record of them the collector checks, then the retention TTLs (when given)."""
    parts = [f"-- spanhouse schema for ClickHouse cluster {cluster}: run once, against any one node.\n"]
    for migration in render_migrations(cluster):
        parts.append(f"\n-- {migration.file_name}\n{migration.text()}")
    parts.append("\n-- the migrations above, recorded for the collector\n")
    parts.append("".join(f"{s};\n\n" for s in migrations_record(cluster)).rstrip("\n") + "\n")
    if days_by_table:
        parts.append("\n-- retention (retention.* of the configuration)\n")
        parts.append("".join(f"{s};\n" for s in retention_statements(cluster, days_by_table)))
    return "".join(parts)


def check_cluster_schema(applied_versions: set[int], cluster: str) -> None:
    """Raise StoreError unless every shipped migration is recorded as applied: with store.cluster the
    collector does not change the schema itself (one node's view of a DDL queue is no place to do it)."""
    missing = [f"{v:03d}_{n}" for v, n, _ in available_migrations() if v not in applied_versions]
    if missing:
        raise StoreError(
            f"store.cluster is {cluster!r} but the store lacks migrations {', '.join(missing)}: print the cluster "
            f"schema with `spanhouse migrate --config FILE --print > schema.sql` and run it once against one node "
            "(clickhouse-client --multiquery < schema.sql), then start the collector again")


def retention_days(retention: object) -> dict[str, int]:
    """Table -> days to keep, from the configuration's retention section."""
    spans, calls, rollups, alerts = (getattr(retention, k) for k in
                                     ("spans_days", "genai_calls_days", "rollups_days", "alerts_days"))
    archive, access = (getattr(retention, k) for k in ("content_archive_days", "content_access_days"))
    return {"spans": spans, "spans_trace_id_ts": spans, "genai_calls": calls, "genai_usage_1m": rollups,
            "genai_usage_1h": rollups, "trace_costs": calls, "alerts": alerts, "genai_content": archive,
            "genai_content_access": access}


def truncate_statement(table: str, cluster: str = "") -> str:
    """TRUNCATE of a table's rows: the table itself on one node, its local tables on every node of a cluster."""
    if not cluster:
        return f"TRUNCATE TABLE {table}"
    check_cluster_name(cluster)
    return f"TRUNCATE TABLE {table}{LOCAL_SUFFIX} ON CLUSTER {cluster}"
