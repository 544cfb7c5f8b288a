-- `spanhouse compare`: one row per LLM call of the two groups (the calls compare_groups.sql counts), with
-- what the statistics need: latency and time to first token in ms, input and output tokens, cost in USD
-- (NULL where the call has none). At most {max_calls} calls per group: the calls with the smallest
-- cityHash64(SpanId), a uniform sample that is the same on every run. {threshold_a} and {threshold_b} only
-- skip rows early (no call above them is among the smallest); 18446744073709551615 keeps every row.
SELECT
    {by:Identifier} = {b:String} AS in_b,
    Duration / 1e6 AS duration_ms,
    TimeToFirstToken * 1e3 AS ttft_ms,
    InputTokens AS input_tokens,
    OutputTokens AS output_tokens,
    CostTotal AS cost_usd
FROM genai_calls
WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
  AND {by:Identifier} IN ({a:String}, {b:String})
  AND if({operation:String} = '', Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool'),
         Operation = {operation:String})
  AND ({model:String} = '' OR Model = {model:String})
  AND ({service:String} = '' OR ServiceName = {service:String})
  AND ({tenant:String} = '' OR TenantId = {tenant:String})
  AND cityHash64(SpanId) <= if(in_b, {threshold_b:UInt64}, {threshold_a:UInt64})
ORDER BY in_b, cityHash64(SpanId)
LIMIT {max_calls:UInt64} BY in_b;
