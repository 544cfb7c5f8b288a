CREATE TABLE IF NOT EXISTS genai_content_local ON CLUSTER spanhouse_cluster
(
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    Key String CODEC(ZSTD(1)),
    Content String CODEC(ZSTD(6)),
    Sha256 String CODEC(ZSTD(1)),
    ArchivedAt DateTime64(3) CODEC(Delta(8), ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_sha256 Sha256 TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', ArchivedAt)
PARTITION BY toDate(Timestamp)
ORDER BY (TenantId, TraceId, SpanId, Key, Sha256)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS genai_content ON CLUSTER spanhouse_cluster AS genai_content_local
ENGINE = Distributed(spanhouse_cluster, currentDatabase(), genai_content_local, cityHash64(TraceId));

CREATE TABLE IF NOT EXISTS genai_content_access_local ON CLUSTER spanhouse_cluster
(
    TenantId LowCardinality(String),
    Timestamp DateTime64(3) CODEC(Delta(8), ZSTD(1)),
    Caller String,
    CallerTenant LowCardinality(String),
    Admin UInt8,
    Path LowCardinality(String),
    TraceId String,
    SpanId String,
    Key String,
    Sha256 String,
    Statement String CODEC(ZSTD(3))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(Timestamp)
ORDER BY (TenantId, Timestamp);

CREATE TABLE IF NOT EXISTS genai_content_access ON CLUSTER spanhouse_cluster AS genai_content_access_local
ENGINE = Distributed(spanhouse_cluster, currentDatabase(), genai_content_access_local, cityHash64(TenantId, TraceId));
