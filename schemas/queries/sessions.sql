-- Conversations (gen_ai.conversation.id) with a call in the time range: turns (traces), LLM calls, cost,
-- tokens, first and last activity, and their newest traces; newest first. The web UI's Sessions tab.
SELECT
    ConversationId AS conversation_id,
    TenantId AS tenant,
    uniqExact(TraceId) AS turns,
    countIf(Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool')) AS llm_calls,
    countIf(StatusCode = 'Error' OR ErrorType != '') AS errors,
    round(sum(ifNull(CostTotal, 0)), 6) AS cost_usd,
    sumIf(ifNull(InputTokens, 0) + ifNull(OutputTokens, 0),
          Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool')) AS tokens,
    min(Timestamp) AS first_seen,
    max(Timestamp + toIntervalNanosecond(Duration)) AS last_seen,
    round(dateDiff('microsecond', first_seen, last_seen) / 1e3, 3) AS duration_ms,
    arraySlice(arrayDistinct(arrayMap(x -> x.1, arrayReverseSort(x -> x.2, groupArray((TraceId, Timestamp))))), 1, 20)
        AS traces,
    groupUniqArray(toString(ServiceName)) AS services
FROM genai_calls
WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
  AND ConversationId != ''
  AND ({tenant:String} = '' OR TenantId = {tenant:String})
  AND ({service:String} = '' OR ServiceName = {service:String})
GROUP BY TenantId, ConversationId
ORDER BY last_seen DESC, conversation_id
LIMIT {limit:UInt32} OFFSET {offset:UInt32};
