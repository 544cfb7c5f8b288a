-- Traces whose last GenAI span ended in [since, until), over at least one of the given limits, with their
-- duration, cost, services and agents: what the trace_budget rule checks against each budget.
SELECT
    TenantId,
    TraceId,
    dateDiff('millisecond', min(Start), max(End)) / 1e3 AS duration_s,
    sum(CostTotal) AS cost_usd,
    groupUniqArrayArray(Services) AS services,
    groupUniqArrayArray(Agents) AS agents
FROM trace_costs
WHERE Day >= toDate(fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC')) - 1 AND Day <= toDate(fromUnixTimestamp64Milli({until_ms:Int64}, 'UTC'))
GROUP BY TenantId, TraceId
HAVING max(End) >= fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC') AND max(End) < fromUnixTimestamp64Milli({until_ms:Int64}, 'UTC')
   AND (duration_s > {min_duration_s:Float64} OR cost_usd > {min_cost_usd:Float64})
ORDER BY TenantId, TraceId
LIMIT 100000
