-- Cost, calls and errors per tenant and service in a recent window and the baseline before it, from the
-- per-minute rollup (times in Unix seconds, UTC): what the cost_spike and error_spike rules compare (docs/alerts.md).
SELECT
    TenantId,
    ServiceName,
    sumIf(CostTotal, Minute >= toDateTime({recent_start_s:Int64}, 'UTC')) AS recent_cost,
    sumIf(Calls, Minute >= toDateTime({recent_start_s:Int64}, 'UTC')) AS recent_calls,
    sumIf(Errors, Minute >= toDateTime({recent_start_s:Int64}, 'UTC')) AS recent_errors,
    sumIf(CostTotal, Minute < toDateTime({recent_start_s:Int64}, 'UTC')) AS baseline_cost,
    sumIf(Calls, Minute < toDateTime({recent_start_s:Int64}, 'UTC')) AS baseline_calls,
    sumIf(Errors, Minute < toDateTime({recent_start_s:Int64}, 'UTC')) AS baseline_errors
FROM genai_usage_1m
WHERE Minute >= toDateTime({baseline_start_s:Int64}, 'UTC') AND Minute < toDateTime({end_s:Int64}, 'UTC')
GROUP BY TenantId, ServiceName
