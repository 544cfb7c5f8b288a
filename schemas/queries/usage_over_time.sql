-- LLM calls per time bucket of {bucket_s} seconds and {group_by} (Model, ServiceName or TenantId): cost,
-- calls, errors and tokens by kind; the web UI's Usage charts. Same call filter as usage.sql, so the sums
-- over buckets equal `spanhouse usage` for the same range.
SELECT
    toStartOfInterval(Timestamp, toIntervalSecond({bucket_s:UInt32}), 'UTC') AS bucket,
    {group_by:Identifier} AS key,
    count() AS calls,
    countIf(StatusCode = 'Error' OR ErrorType != '') AS errors,
    sum(ifNull(InputTokens, 0)) AS input_tokens,
    sum(ifNull(CacheReadTokens, 0)) AS cached_tokens,
    sum(ifNull(OutputTokens, 0)) AS output_tokens,
    sum(ifNull(CacheWriteTokens, 0)) AS cache_write_tokens,
    sum(ifNull(ReasoningTokens, 0)) AS reasoning_tokens,
    round(sum(CostTotal), 6) AS cost_usd
FROM genai_calls
WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
  AND Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool')
  AND ({tenant:String} = '' OR TenantId = {tenant:String})
  AND ({service:String} = '' OR ServiceName = {service:String})
  AND ({model:String} = '' OR Model = {model:String})
GROUP BY bucket, key
ORDER BY bucket, key;
