CREATE TABLE IF NOT EXISTS model_prices_local ON CLUSTER spanhouse_cluster
(
    Provider LowCardinality(String),
    Model LowCardinality(String),
    EffectiveFrom DateTime64(3, 'UTC'),
    InputPerMTok Float64,
    OutputPerMTok Float64,
    CacheReadPerMTok Float64,
    CacheWritePerMTok Float64,
    LongContextAboveTokens UInt64,
    LongInputPerMTok Float64,
    LongOutputPerMTok Float64,
    LongCacheReadPerMTok Float64,
    LongCacheWritePerMTok Float64,
    Source String,
    Origin LowCardinality(String),
    TableChecksum String,
    LoadedAt DateTime DEFAULT now()
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (Model, Provider, EffectiveFrom);

CREATE TABLE IF NOT EXISTS model_prices ON CLUSTER spanhouse_cluster AS model_prices_local
ENGINE = Distributed(spanhouse_cluster, currentDatabase(), model_prices_local, cityHash64(Provider, Model));

CREATE TABLE IF NOT EXISTS trace_costs_local ON CLUSTER spanhouse_cluster
(
    TenantId LowCardinality(String),
    TraceId String,
    Day Date,
    Start SimpleAggregateFunction(min, DateTime64(9)),
    End SimpleAggregateFunction(max, DateTime64(9)),
    Calls SimpleAggregateFunction(sum, UInt64),
    LlmCalls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    UnpricedCalls SimpleAggregateFunction(sum, UInt64),
    InputTokens SimpleAggregateFunction(sum, UInt64),
    OutputTokens SimpleAggregateFunction(sum, UInt64),
    CacheReadTokens SimpleAggregateFunction(sum, UInt64),
    CacheWriteTokens SimpleAggregateFunction(sum, UInt64),
    CostTotal SimpleAggregateFunction(sum, Float64),
    Services SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    Models SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    Tools SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    Agents SimpleAggregateFunction(groupUniqArrayArray, Array(String))
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(Day)
ORDER BY (TenantId, TraceId, Day);

CREATE TABLE IF NOT EXISTS trace_costs ON CLUSTER spanhouse_cluster AS trace_costs_local
ENGINE = Distributed(spanhouse_cluster, currentDatabase(), trace_costs_local, cityHash64(TraceId));

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_costs_mv ON CLUSTER spanhouse_cluster TO trace_costs_local AS
SELECT
    TenantId,
    TraceId,
    toDate(Timestamp) AS Day,
    min(Timestamp) AS Start,
    max(Timestamp + toIntervalNanosecond(Duration)) AS End,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool'))) AS LlmCalls,
    toUInt64(countIf(StatusCode = 'Error' OR ErrorType != '')) AS Errors,
    toUInt64(countIf(genai_calls.CostTotal IS NULL AND Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool'))) AS UnpricedCalls,
    toUInt64(sumIf(ifNull(genai_calls.InputTokens, 0), Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool'))) AS InputTokens,
    toUInt64(sumIf(ifNull(genai_calls.OutputTokens, 0), Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool'))) AS OutputTokens,
    toUInt64(sumIf(ifNull(genai_calls.CacheReadTokens, 0), Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool'))) AS CacheReadTokens,
    toUInt64(sumIf(ifNull(genai_calls.CacheWriteTokens, 0), Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool'))) AS CacheWriteTokens,
    toFloat64(sum(ifNull(genai_calls.CostTotal, 0))) AS CostTotal,
    groupUniqArrayIf(toString(ServiceName), ServiceName != '') AS Services,
    groupUniqArrayIf(toString(Model), Model != '') AS Models,
    groupUniqArrayIf(toString(ToolName), ToolName != '') AS Tools,
    groupUniqArrayIf(toString(AgentName), AgentName != '') AS Agents
FROM genai_calls_local AS genai_calls
WHERE TraceId != ''
GROUP BY TenantId, TraceId, Day;
