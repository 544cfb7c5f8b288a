CREATE TABLE IF NOT EXISTS alerts_local ON CLUSTER spanhouse_cluster
(
    TenantId LowCardinality(String),
    Timestamp DateTime64(3) CODEC(Delta(8), ZSTD(1)),
    Fingerprint String,
    AlertName LowCardinality(String),
    Event LowCardinality(String),
    Status LowCardinality(String),
    Severity LowCardinality(String),
    StartsAt DateTime64(3),
    EndsAt Nullable(DateTime64(3)),
    Summary String CODEC(ZSTD(1)),
    Labels Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Annotations Map(LowCardinality(String), String) CODEC(ZSTD(1))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(Timestamp)
ORDER BY (TenantId, Timestamp, Fingerprint);

CREATE TABLE IF NOT EXISTS alerts ON CLUSTER spanhouse_cluster AS alerts_local
ENGINE = Distributed(spanhouse_cluster, currentDatabase(), alerts_local, cityHash64(Fingerprint));
