-- `spanhouse compare`: every LLM call of the two groups compared, counted exactly (never sampled): calls and
-- failed calls per group. in_b is 0 for group A ({by} = {a}) and 1 for group B ({by} = {b}); {by} is
-- ServiceVersion, DeploymentEnvironment, TenantId or ServiceName. Without an operation, agent, workflow and
-- tool spans are left out (they are not LLM calls); '' = any model, service or tenant.
SELECT
    {by:Identifier} = {b:String} AS in_b,
    count() AS calls,
    countIf(StatusCode = 'Error' OR ErrorType != '') AS errors
FROM genai_calls
WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
  AND {by:Identifier} IN ({a:String}, {b:String})
  AND if({operation:String} = '', Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool'),
         Operation = {operation:String})
  AND ({model:String} = '' OR Model = {model:String})
  AND ({service:String} = '' OR ServiceName = {service:String})
  AND ({tenant:String} = '' OR TenantId = {tenant:String})
GROUP BY in_b
ORDER BY in_b;
