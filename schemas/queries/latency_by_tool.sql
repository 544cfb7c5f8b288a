-- Exact p50/p95/p99 latency in milliseconds of tool executions per tool (tenant, service, tool '' = any).
-- Also what `spanhouse usage --by tool` prints and the web UI's Usage tab shows.
SELECT
    ToolName AS tool,
    count() AS calls,
    countIf(StatusCode = 'Error' OR ErrorType != '') AS errors,
    arrayMap(x -> round(x, 3), quantilesExactInclusive(0.5, 0.95, 0.99)(Duration / 1e6)) AS p50_p95_p99_ms
FROM genai_calls
WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
  AND Operation = 'execute_tool'
  AND ({tenant:String} = '' OR TenantId = {tenant:String})
  AND ({service:String} = '' OR ServiceName = {service:String})
  AND ({tool:String} = '' OR ToolName = {tool:String})
GROUP BY tool
ORDER BY calls DESC, tool;
