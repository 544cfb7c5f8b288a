-- The price table the collector prices calls with (built-in prices.yaml, the
-- user's price file and configuration overrides, merged), reloaded at start-up
-- whenever it changes, so costs can be recomputed or checked in SQL.
-- USD per million tokens; cache rates already fall back to the input rate.
CREATE TABLE IF NOT EXISTS model_prices
(
    Provider LowCardinality(String),
    Model LowCardinality(String),
    EffectiveFrom DateTime64(3, 'UTC'),
    InputPerMTok Float64,
    OutputPerMTok Float64,
    CacheReadPerMTok Float64,
    CacheWritePerMTok Float64,
    -- Above this many input tokens the Long* rates apply to the whole call; 0: no such tier.
    LongContextAboveTokens UInt64,
    LongInputPerMTok Float64,
    LongOutputPerMTok Float64,
    LongCacheReadPerMTok Float64,
    LongCacheWritePerMTok Float64,
    Source String,
    -- builtin, file (pricing.price_file) or config (pricing.overrides)
    Origin LowCardinality(String),
    TableChecksum String,
    LoadedAt DateTime DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (Model, Provider, EffectiveFrom);

-- One row per trace, tenant and day, summed over the trace's GenAI calls, so
-- "traces costing more than $X" or "the slowest traces" read this small table
-- instead of every call. Cost and tokens come from billed calls only: agent
-- and tool spans have no cost, and their repeated usage is not summed. Read it
-- with GROUP BY TenantId, TraceId (sum, min, max), as parts merge lazily.
CREATE TABLE IF NOT EXISTS trace_costs
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
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(Day)
ORDER BY (TenantId, TraceId, Day);

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_costs_mv TO trace_costs AS
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
FROM genai_calls
WHERE TraceId != ''
GROUP BY TenantId, TraceId, Day;
