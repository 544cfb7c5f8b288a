-- `spanhouse compare`: the LLM calls of two groups, A ({by} = {a}, in_b = 0) and B ({by} = {b}, in_b = 1), where
-- {by} is ServiceVersion, DeploymentEnvironment, TenantId or ServiceName. One row per call with what the
-- statistics need: latency and time to first token in ms, input and output tokens, cost in USD (NULL where the
-- call has none), and its group's exact count of calls and of failed calls (status Error or an error.type).
-- At most {max_calls} rows per group: the calls with the smallest cityHash64(SpanId), a uniform sample that is
-- the same on every run, kept in one pass with bounded memory (groupArraySorted). Without an operation, agent,
-- workflow and tool spans are left out (they are not LLM calls); '' = any model, service or tenant.
SELECT
    in_b,
    call.2 AS duration_ms,
    call.3 AS ttft_ms,
    call.4 AS input_tokens,
    call.5 AS output_tokens,
    call.6 AS cost_usd,
    group_calls,
    group_errors
FROM
(
    SELECT
        {by:Identifier} = {b:String} AS in_b,
        count() AS group_calls,
        countIf(StatusCode = 'Error' OR ErrorType != '') AS group_errors,
        groupArraySorted({max_calls:UInt64})(
            (cityHash64(SpanId), Duration / 1e6, TimeToFirstToken * 1e3, InputTokens, OutputTokens, CostTotal)) AS kept
    FROM genai_calls
    WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
      AND {by:Identifier} IN ({a:String}, {b:String})
      AND if({operation:String} = '',
             Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool'),
             Operation = {operation:String})
      AND ({model:String} = '' OR Model = {model:String})
      AND ({service:String} = '' OR ServiceName = {service:String})
      AND ({tenant:String} = '' OR TenantId = {tenant:String})
    GROUP BY in_b
)
ARRAY JOIN kept AS call
ORDER BY in_b;
