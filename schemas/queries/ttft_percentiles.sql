-- Exact p50/p95/p99 time to first token in milliseconds per model (streamed calls).
SELECT
    Model AS model,
    count() AS streamed_calls,
    arrayMap(x -> round(x, 3), quantilesExactInclusive(0.5, 0.95, 0.99)(TimeToFirstToken * 1e3)) AS p50_p95_p99_ms
FROM genai_calls
WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
  AND TimeToFirstToken IS NOT NULL
GROUP BY model
ORDER BY streamed_calls DESC, model;
