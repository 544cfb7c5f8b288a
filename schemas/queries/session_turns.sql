-- One session's turns: the traces with a call of conversation {conversation} in the time range, oldest
-- first, each with its LLM calls, tokens, cost, errors, agents, and its tasks with how they ended (in start
-- order; a task is an agent run not inside another, as in sessions.sql). What `spanhouse sessions ID` prints.
-- Counted as sessions.sql counts them, so a session's turns add up to its row there.
SELECT
    TraceId AS trace_id,
    TenantId AS tenant,
    min(Timestamp) AS start,
    round(dateDiff('microsecond', min(Timestamp), max(Timestamp + toIntervalNanosecond(Duration))) / 1e3, 3)
        AS duration_ms,
    countIf(is_llm) AS llm_calls,
    sumIf(ifNull(InputTokens, 0) + ifNull(OutputTokens, 0), is_llm) AS tokens,
    round(sum(ifNull(CostTotal, 0)), 6) AS cost_usd,
    countIf(StatusCode = 'Error' OR ErrorType != '') AS errors,
    countIf(is_task) AS tasks,
    arrayMap(x -> x.2, arraySort(x -> x.1, groupArrayIf((Timestamp, toString(Outcome)), is_task))) AS outcomes,
    arrayMap(x -> x.2, arraySort(x -> x.1, groupArrayIf((Timestamp, OutcomeReason), is_task))) AS outcome_reasons,
    arrayMap(x -> x.2, arraySort(x -> x.1, groupArrayIf((Timestamp, toString(AgentName)), is_task))) AS agents,
    arraySort(groupUniqArrayIf(toString(AgentVersion), AgentVersion != '')) AS agent_versions,
    argMinIf(UserId, Timestamp, UserId != '') AS user_id,
    arraySort(groupUniqArrayIf(toString(Model), Model != '' AND is_llm)) AS models
FROM (
    SELECT
        TenantId, TraceId, Timestamp, Duration, StatusCode, ErrorType, CostTotal, InputTokens, OutputTokens,
        AgentName, AgentVersion, Outcome, OutcomeReason, UserId, Model,
        Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool') AS is_llm,
        Operation = 'invoke_agent' AND (TraceId, ParentSpanId) NOT IN (
            SELECT TraceId, SpanId FROM genai_calls
            WHERE Timestamp >= {since:DateTime64(3)} - INTERVAL 1 DAY AND Timestamp < {until:DateTime64(3)}
              AND Operation = 'invoke_agent'
              AND ({tenant:String} = '' OR TenantId = {tenant:String})) AS is_task
    FROM genai_calls
    WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
      AND ConversationId = {conversation:String}
      AND ({tenant:String} = '' OR TenantId = {tenant:String}))
GROUP BY TenantId, TraceId
ORDER BY start, trace_id
LIMIT {limit:UInt32};
