-- Tokens and cost per model split into uncached input, cached input (cache
-- reads), cache writes and output. Input tokens include the cached ones, so the
-- uncached part is input - cache read - cache write. Priced calls only.
SELECT
    Model AS model,
    count() AS priced_calls,
    sum(greatest(toInt64(ifNull(InputTokens, 0)) - toInt64(ifNull(CacheReadTokens, 0))
                 - toInt64(ifNull(CacheWriteTokens, 0)), 0)) AS uncached_input_tokens,
    sum(ifNull(CacheReadTokens, 0)) AS cached_input_tokens,
    sum(ifNull(CacheWriteTokens, 0)) AS cache_write_tokens,
    sum(ifNull(OutputTokens, 0)) AS output_tokens,
    round(sum(CostInput), 6) AS uncached_input_usd,
    round(sum(CostCacheRead), 6) AS cached_input_usd,
    round(sum(CostCacheWrite), 6) AS cache_write_usd,
    round(sum(CostOutput), 6) AS output_usd,
    round(sum(CostTotal), 6) AS total_usd
FROM genai_calls
WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
  AND CostTotal IS NOT NULL
GROUP BY model
ORDER BY total_usd DESC, model;
