-- Calls, tokens, cost and latency percentiles per model over the last {hours:UInt32} hours, from the per-minute rollup.
SELECT
    Model,
    sum(Calls) AS calls,
    sum(Errors) AS errors,
    sum(InputTokens) AS input_tokens,
    sum(OutputTokens) AS output_tokens,
    round(sum(CostTotal), 6) AS cost_usd,
    arrayMap(x -> round(x, 1), quantilesTDigestMerge(0.5, 0.95, 0.99)(DurationMs)) AS p50_p95_p99_ms
FROM genai_usage_1m
WHERE Minute >= now() - toIntervalHour({hours:UInt32}) AND Model != ''
GROUP BY Model
ORDER BY calls DESC;
