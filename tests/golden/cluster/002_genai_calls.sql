CREATE TABLE IF NOT EXISTS genai_calls_local ON CLUSTER spanhouse_cluster
(
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    Operation LowCardinality(String) CODEC(ZSTD(1)),
    Provider LowCardinality(String) CODEC(ZSTD(1)),
    RequestModel LowCardinality(String) CODEC(ZSTD(1)),
    ResponseModel LowCardinality(String) CODEC(ZSTD(1)),
    ResponseId String CODEC(ZSTD(1)),
    FinishReasons Array(LowCardinality(String)) CODEC(ZSTD(1)),
    InputTokens Nullable(UInt64) CODEC(ZSTD(1)),
    OutputTokens Nullable(UInt64) CODEC(ZSTD(1)),
    CacheReadTokens Nullable(UInt64) CODEC(ZSTD(1)),
    CacheWriteTokens Nullable(UInt64) CODEC(ZSTD(1)),
    ReasoningTokens Nullable(UInt64) CODEC(ZSTD(1)),
    CostInput Nullable(Float64) CODEC(ZSTD(1)),
    CostOutput Nullable(Float64) CODEC(ZSTD(1)),
    CostCacheRead Nullable(Float64) CODEC(ZSTD(1)),
    CostCacheWrite Nullable(Float64) CODEC(ZSTD(1)),
    CostTotal Nullable(Float64) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    TimeToFirstToken Nullable(Float64) CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    ErrorType LowCardinality(String) CODEC(ZSTD(1)),
    ToolName LowCardinality(String) CODEC(ZSTD(1)),
    ToolCallId String CODEC(ZSTD(1)),
    AgentName LowCardinality(String) CODEC(ZSTD(1)),
    AgentId String CODEC(ZSTD(1)),
    ConversationId String CODEC(ZSTD(1)),
    Model LowCardinality(String) MATERIALIZED if(ResponseModel != '', ResponseModel, RequestModel),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
ORDER BY (TenantId, ServiceName, Operation, Timestamp)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS genai_calls ON CLUSTER spanhouse_cluster AS genai_calls_local
ENGINE = Distributed(spanhouse_cluster, currentDatabase(), genai_calls_local, cityHash64(TraceId));
