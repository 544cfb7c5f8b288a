-- Traces that started in the time range, from trace_costs, filtered by tenant,
-- service, model, tool ('' = any), errors, minimum cost and duration, and text in
-- a span name (span_text; '' = any, read from spans), ordered by {order_by}:
-- cost_usd for the N most expensive traces, duration_ms for the N slowest, start
-- for the newest; {offset} rows skipped (pages). What `spanhouse traces` and the
-- web UI's Traces tab run. The inner query picks the page from sums alone; the
-- services, models and tools lists are built for that page's traces only.
SELECT
    TraceId AS trace_id,
    TenantId AS tenant,
    min(Start) AS start,
    round(dateDiff('microsecond', min(Start), max(End)) / 1e3, 3) AS duration_ms,
    sum(LlmCalls) AS llm_calls,
    sum(Errors) AS errors,
    sum(InputTokens) + sum(OutputTokens) AS tokens,
    round(sum(CostTotal), 6) AS cost_usd,
    groupUniqArrayArray(Services) AS services,
    groupUniqArrayArray(Models) AS models,
    groupUniqArrayArray(Tools) AS tools,
    sum(InputTokens) AS input_tokens,
    sum(CacheReadTokens) AS cached_tokens,
    sum(OutputTokens) AS output_tokens
FROM trace_costs
WHERE Day >= toDate({since:DateTime64(3)}) AND Day <= toDate({until:DateTime64(3)})
  AND ({tenant:String} = '' OR TenantId = {tenant:String})
  AND (TenantId, TraceId) IN (
    SELECT TenantId, TraceId FROM (
        SELECT
            TenantId,
            TraceId,
            min(Start) AS start,
            round(dateDiff('microsecond', min(Start), max(End)) / 1e3, 3) AS duration_ms,
            round(sum(CostTotal), 6) AS cost_usd
        FROM trace_costs
        WHERE Day >= toDate({since:DateTime64(3)}) AND Day <= toDate({until:DateTime64(3)})
          AND ({tenant:String} = '' OR TenantId = {tenant:String})
          AND ({span_text:String} = '' OR TraceId IN (
              SELECT TraceId FROM spans
              WHERE Timestamp >= {since:DateTime64(3)} - INTERVAL 1 DAY
                AND Timestamp < {until:DateTime64(3)} + INTERVAL 1 DAY
                AND ({tenant:String} = '' OR TenantId = {tenant:String})
                AND positionCaseInsensitiveUTF8(SpanName, {span_text:String}) > 0))
        GROUP BY TenantId, TraceId
        HAVING start >= {since:DateTime64(3)} AND start < {until:DateTime64(3)}
           AND ({service:String} = '' OR max(has(Services, {service:String})))
           AND ({model:String} = '' OR max(has(Models, {model:String})))
           AND ({tool:String} = '' OR max(has(Tools, {tool:String})))
           AND (NOT {errors_only:UInt8} OR sum(Errors) > 0)
           AND sum(CostTotal) >= {min_cost:Float64}
           AND duration_ms >= {min_duration_ms:Float64}
        ORDER BY {order_by:Identifier} DESC, TraceId
        LIMIT {limit:UInt32} OFFSET {offset:UInt32}))
GROUP BY TenantId, TraceId
ORDER BY {order_by:Identifier} DESC, trace_id;
