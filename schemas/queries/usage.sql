-- `spanhouse usage --by model|service|tenant` and the web UI's Usage tab: LLM calls grouped by {group_by}
-- (Model, ServiceName or TenantId), with errors, tokens, cost, exact latency percentiles and time to first
-- token, optionally only one service, model or tool ('' = any).
SELECT
    {group_by:Identifier} AS key,
    count() AS calls,
    countIf(StatusCode = 'Error' OR ErrorType != '') AS errors,
    sum(ifNull(InputTokens, 0)) AS input_tokens,
    sum(ifNull(CacheReadTokens, 0)) AS cached_tokens,
    sum(ifNull(OutputTokens, 0)) AS output_tokens,
    round(sum(CostTotal), 6) AS cost_usd,
    countIf(CostTotal IS NULL) AS unpriced,
    arrayMap(x -> round(x, 1), quantilesExactInclusive(0.5, 0.95, 0.99)(Duration / 1e6)) AS ms,
    arrayMap(x -> round(x * 1e3, 1), quantilesExactInclusive(0.5, 0.95, 0.99)(TimeToFirstToken)) AS ttft_ms,
    sum(ifNull(CacheWriteTokens, 0)) AS cache_write_tokens,
    sum(ifNull(ReasoningTokens, 0)) AS reasoning_tokens
FROM genai_calls
WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
  AND Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool')
  AND ({tenant:String} = '' OR TenantId = {tenant:String})
  AND ({service:String} = '' OR ServiceName = {service:String})
  AND ({model:String} = '' OR Model = {model:String})
GROUP BY key
ORDER BY cost_usd DESC, calls DESC, key;
