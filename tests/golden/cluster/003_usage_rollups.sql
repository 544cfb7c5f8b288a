CREATE TABLE IF NOT EXISTS genai_usage_1m_local ON CLUSTER spanhouse_cluster
(
    TenantId LowCardinality(String),
    Minute DateTime CODEC(Delta(4), ZSTD(1)),
    ServiceName LowCardinality(String),
    Provider LowCardinality(String),
    Model LowCardinality(String),
    Operation LowCardinality(String),
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CacheReadTokens SimpleAggregateFunction(sum, UInt64),
    CacheWriteTokens SimpleAggregateFunction(sum, UInt64),
    ReasoningTokens SimpleAggregateFunction(sum, UInt64),
    CostTotal SimpleAggregateFunction(sum, Float64),
    PricedCalls SimpleAggregateFunction(sum, UInt64),
    DurationMs AggregateFunction(quantileTDigest, Float64),
    TimeToFirstTokenMs AggregateFunction(quantileTDigest, Float64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(Minute)
ORDER BY (TenantId, Minute, ServiceName, Provider, Model, Operation);

CREATE TABLE IF NOT EXISTS genai_usage_1m ON CLUSTER spanhouse_cluster AS genai_usage_1m_local
ENGINE = Distributed(spanhouse_cluster, currentDatabase(), genai_usage_1m_local, cityHash64(TenantId, ServiceName, Model));

CREATE MATERIALIZED VIEW IF NOT EXISTS genai_usage_1m_mv ON CLUSTER spanhouse_cluster TO genai_usage_1m_local AS
SELECT
    TenantId,
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    Provider,
    Model,
    Operation,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(StatusCode = 'Error' OR ErrorType != '')) AS Errors,
    toUInt64(sum(ifNull(InputTokens, 0))) AS InputTokens,
    toUInt64(sum(ifNull(OutputTokens, 0))) AS OutputTokens,
    toUInt64(sum(ifNull(CacheReadTokens, 0))) AS CacheReadTokens,
    toUInt64(sum(ifNull(CacheWriteTokens, 0))) AS CacheWriteTokens,
    toUInt64(sum(ifNull(ReasoningTokens, 0))) AS ReasoningTokens,
    toFloat64(sum(ifNull(CostTotal, 0))) AS CostTotal,
    toUInt64(countIf(genai_calls.CostTotal IS NOT NULL)) AS PricedCalls,
    quantileTDigestState(toFloat64(Duration) / 1e6) AS DurationMs,
    quantileTDigestStateIf(ifNull(TimeToFirstToken, 0) * 1e3, TimeToFirstToken IS NOT NULL) AS TimeToFirstTokenMs
FROM genai_calls_local AS genai_calls
GROUP BY TenantId, Minute, ServiceName, Provider, Model, Operation;

CREATE TABLE IF NOT EXISTS genai_usage_1h_local ON CLUSTER spanhouse_cluster
(
    TenantId LowCardinality(String),
    Hour DateTime CODEC(Delta(4), ZSTD(1)),
    ServiceName LowCardinality(String),
    Provider LowCardinality(String),
    Model LowCardinality(String),
    Operation LowCardinality(String),
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CacheReadTokens SimpleAggregateFunction(sum, UInt64),
    CacheWriteTokens SimpleAggregateFunction(sum, UInt64),
    ReasoningTokens SimpleAggregateFunction(sum, UInt64),
    CostTotal SimpleAggregateFunction(sum, Float64),
    PricedCalls SimpleAggregateFunction(sum, UInt64),
    DurationMs AggregateFunction(quantileTDigest, Float64),
    TimeToFirstTokenMs AggregateFunction(quantileTDigest, Float64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(Hour)
ORDER BY (TenantId, Hour, ServiceName, Provider, Model, Operation);

CREATE TABLE IF NOT EXISTS genai_usage_1h ON CLUSTER spanhouse_cluster AS genai_usage_1h_local
ENGINE = Distributed(spanhouse_cluster, currentDatabase(), genai_usage_1h_local, cityHash64(TenantId, ServiceName, Model));

CREATE MATERIALIZED VIEW IF NOT EXISTS genai_usage_1h_mv ON CLUSTER spanhouse_cluster TO genai_usage_1h_local AS
SELECT
    TenantId,
    toStartOfHour(Timestamp) AS Hour,
    ServiceName,
    Provider,
    Model,
    Operation,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(StatusCode = 'Error' OR ErrorType != '')) AS Errors,
    toUInt64(sum(ifNull(InputTokens, 0))) AS InputTokens,
    toUInt64(sum(ifNull(OutputTokens, 0))) AS OutputTokens,
    toUInt64(sum(ifNull(CacheReadTokens, 0))) AS CacheReadTokens,
    toUInt64(sum(ifNull(CacheWriteTokens, 0))) AS CacheWriteTokens,
    toUInt64(sum(ifNull(ReasoningTokens, 0))) AS ReasoningTokens,
    toFloat64(sum(ifNull(CostTotal, 0))) AS CostTotal,
    toUInt64(countIf(genai_calls.CostTotal IS NOT NULL)) AS PricedCalls,
    quantileTDigestState(toFloat64(Duration) / 1e6) AS DurationMs,
    quantileTDigestStateIf(ifNull(TimeToFirstToken, 0) * 1e3, TimeToFirstToken IS NOT NULL) AS TimeToFirstTokenMs
FROM genai_calls_local AS genai_calls
GROUP BY TenantId, Hour, ServiceName, Provider, Model, Operation;
