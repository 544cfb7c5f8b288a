-- Message content archived out of `spans` (docs/security.md, "Content by reference"): after
-- retention.content_days the collector copies each content value of a span here, then replaces it in
-- `spans` by a reference `spanhouse:content:sha256:<hex>;kept-until:<date>`. Only admin keys may read this
-- table, and every read through the collector is recorded in genai_content_access. Its TTL
-- (retention.content_archive_days) is set at start-up from the span's start, like the other tables'.
-- Replacing: a copy run again after a crash adds rows with the same sort key, which merges fold into one.
CREATE TABLE IF NOT EXISTS genai_content
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
ENGINE = ReplacingMergeTree(ArchivedAt)
PARTITION BY toDate(Timestamp)
ORDER BY (TenantId, TraceId, SpanId, Key, Sha256)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

-- Who read archived content, when, which span, and through which path (ui, export, cli, sql). TenantId is
-- the tenant whose content was read; Caller the key's name (or its tenant), Admin whether it was an admin key.
CREATE TABLE IF NOT EXISTS genai_content_access
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
ENGINE = MergeTree
PARTITION BY toYYYYMM(Timestamp)
ORDER BY (TenantId, Timestamp);
