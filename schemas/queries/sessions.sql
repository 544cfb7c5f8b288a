-- Sessions: conversations (gen_ai.conversation.id) with a call in the time range, newest activity first.
-- Per session: the (hashed) user, turns (traces), LLM calls, tokens, cost, errors, first and last activity,
-- tasks and how they ended, and the newest traces. What `spanhouse sessions` prints and the web UI's
-- Sessions tab shows. Filters: tenant, service, conversation ('' = any) and user (sessions in which any call
-- carries that UserId; the session's numbers still count all its calls).
-- A task is an agent run: an invoke_agent call whose parent is not itself an agent run (a sub-agent is part
-- of its parent's task). tasks = completed + surfaced + errored + timed_out + no_outcome.
SELECT
    ConversationId AS conversation_id,
    TenantId AS tenant,
    argMinIf(UserId, Timestamp, UserId != '') AS user_id,
    uniqExactIf(UserId, UserId != '') AS users,
    uniqExact(TraceId) AS turns,
    countIf(is_llm) AS llm_calls,
    countIf(StatusCode = 'Error' OR ErrorType != '') AS errors,
    round(sum(ifNull(CostTotal, 0)), 6) AS cost_usd,
    sumIf(ifNull(InputTokens, 0) + ifNull(OutputTokens, 0), is_llm) AS tokens,
    min(Timestamp) AS first_seen,
    max(Timestamp + toIntervalNanosecond(Duration)) AS last_seen,
    round(dateDiff('microsecond', first_seen, last_seen) / 1e3, 3) AS duration_ms,
    countIf(is_task) AS tasks,
    countIf(is_task AND Outcome = 'completed') AS completed,
    countIf(is_task AND Outcome = 'surfaced') AS surfaced,
    countIf(is_task AND Outcome = 'errored') AS errored,
    countIf(is_task AND Outcome = 'timed_out') AS timed_out,
    countIf(is_task AND Outcome = '') AS no_outcome,
    arraySort(groupUniqArrayIf(toString(AgentVersion), AgentVersion != '')) AS agent_versions,
    arraySlice(arrayDistinct(arrayMap(x -> x.1, arrayReverseSort(x -> x.2, groupArray((TraceId, Timestamp))))), 1, 20)
        AS traces,
    groupUniqArray(toString(ServiceName)) AS services
FROM (
    SELECT
        TenantId, ConversationId, UserId, TraceId, Timestamp, Duration, StatusCode, ErrorType, CostTotal,
        InputTokens, OutputTokens, ServiceName, AgentVersion, Outcome,
        Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool') AS is_llm,
        Operation = 'invoke_agent' AND (TraceId, ParentSpanId) NOT IN (
            -- Agent runs that may be a parent: from a day before the range, as a task may start before it.
            SELECT TraceId, SpanId FROM genai_calls
            WHERE Timestamp >= {since:DateTime64(3)} - INTERVAL 1 DAY AND Timestamp < {until:DateTime64(3)}
              AND Operation = 'invoke_agent'
              AND ({tenant:String} = '' OR TenantId = {tenant:String})) AS is_task
    FROM genai_calls
    WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
      AND ConversationId != ''
      AND ({tenant:String} = '' OR TenantId = {tenant:String})
      AND ({service:String} = '' OR ServiceName = {service:String})
      AND ({conversation:String} = '' OR ConversationId = {conversation:String}))
GROUP BY TenantId, ConversationId
HAVING {user:String} = '' OR countIf(UserId = {user:String}) > 0
ORDER BY last_seen DESC, conversation_id
LIMIT {limit:UInt32} OFFSET {offset:UInt32};
