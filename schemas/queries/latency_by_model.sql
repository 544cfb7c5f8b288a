-- Exact p50/p95/p99 latency in milliseconds of LLM calls per model.
SELECT
    Model AS model,
    count() AS calls,
    arrayMap(x -> round(x, 3), quantilesExactInclusive(0.5, 0.95, 0.99)(Duration / 1e6)) AS p50_p95_p99_ms
FROM genai_calls
WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
  AND Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool')
GROUP BY model
ORDER BY calls DESC, model;
