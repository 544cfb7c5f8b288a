-- Cost in USD per tenant, service and model per day, from the hourly rollup.
-- Calls are LLM calls (agent and tool spans left out); unpriced calls are those
-- whose model has no price (their cost is not in cost_usd).
SELECT
    toDate(Hour) AS day,
    TenantId AS tenant,
    ServiceName AS service,
    Model AS model,
    sum(Calls) AS calls,
    sum(Calls) - sum(PricedCalls) AS unpriced_calls,
    round(sum(CostTotal), 6) AS cost_usd
FROM genai_usage_1h
WHERE Hour >= toStartOfHour({since:DateTime64(3)}) AND Hour < {until:DateTime64(3)}
  AND Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool')
GROUP BY day, tenant, service, model
ORDER BY day, cost_usd DESC, tenant, service, model;
