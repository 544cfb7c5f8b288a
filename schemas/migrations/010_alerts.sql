-- Alert history: one row each time the collector's alert engine fires, re-sends or resolves an alert
-- (docs/alerts.md). TenantId scopes the rows like every other table ('' = collector-wide alerts, such as
-- pipeline health, which only admin keys and the local caller see).
CREATE TABLE IF NOT EXISTS alerts
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
ENGINE = MergeTree
PARTITION BY toYYYYMM(Timestamp)
ORDER BY (TenantId, Timestamp, Fingerprint);
