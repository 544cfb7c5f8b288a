-- bench/ui.py's store: {traces} agent turns of 20 spans each (1,000,000 spans for 50,000 traces) and 4 GenAI
-- calls each (an agent, two chats, a tool: 200,000 rows of genai_calls), spread over the last 7 days, across 50
-- tenants and 50 services, 8 models, 6 tools, 4% errors, ~1 KB of messages on the chats of one trace in 5.
-- Written through the real tables, so the materialized views fill trace_costs, the rollups and spans_trace_id_ts.
-- Statements are separated by a line holding only `;;`.
INSERT INTO genai_calls (TenantId, Timestamp, ServiceName, TraceId, SpanId, ParentSpanId, SpanName, Operation,
    Provider, RequestModel, ResponseModel, ResponseId, FinishReasons, InputTokens, OutputTokens, CacheReadTokens,
    CacheWriteTokens, ReasoningTokens, CostInput, CostOutput, CostCacheRead, CostCacheWrite, CostTotal, Duration,
    TimeToFirstToken, StatusCode, ErrorType, ToolName, ToolCallId, AgentName, AgentId, ConversationId)
SELECT
    concat('tenant-', toString(sipHash64(t, 100) % 50)) AS tenant,
    now64(9) - toIntervalMillisecond(t * {span_ms:UInt64}) + toIntervalMillisecond(j * 40) AS ts,
    concat('svc-', toString(sipHash64(t, 101) % 50)),
    concat(leftPad(lower(hex(sipHash64(t, 1))), 16, '0'), leftPad(lower(hex(sipHash64(t, 2))), 16, '0')),
    leftPad(lower(hex(sipHash64(t, j, 3))), 16, '0'),
    if(j = 0, '', leftPad(lower(hex(sipHash64(t, 0, 3))), 16, '0')),
    multiIf(j = 0, 'invoke_agent assistant', j = 3, concat('execute_tool ', tool), concat('chat ', model)),
    multiIf(j = 0, 'invoke_agent', j = 3, 'execute_tool', 'chat'),
    if(model LIKE 'claude%', 'anthropic', 'openai'),
    if(j IN (1, 2), model, ''), if(j IN (1, 2), model, ''), '', if(j IN (1, 2), ['stop'], []),
    if(j IN (1, 2), toNullable(inp), NULL), if(j IN (1, 2), toNullable(outp), NULL),
    if(j IN (1, 2), toNullable(intDiv(inp, 3) * (sipHash64(t, j, 5) % 2)), NULL), if(j IN (1, 2), toNullable(toUInt64(0)), NULL),
    if(j IN (1, 2), toNullable(toUInt64(0)), NULL),
    if(j IN (1, 2), toNullable(inp * 2.5e-6), NULL), if(j IN (1, 2), toNullable(outp * 1e-5), NULL),
    if(j IN (1, 2), toNullable(0.0), NULL), if(j IN (1, 2), toNullable(0.0), NULL),
    if(j IN (1, 2), toNullable(inp * 2.5e-6 + outp * 1e-5), NULL),
    toUInt64(multiIf(j = 0, 2500, j = 3, 80, 400 + sipHash64(t, j, 6) % 3000) * 1000000),
    if(j IN (1, 2), toNullable(0.1 + (sipHash64(t, j, 7) % 900) / 1000), NULL),
    if(err, 'Error', 'Unset'), if(err, '429', ''), if(j = 3, tool, ''), '', 'assistant', 'asst_1',
    concat('conv-', toString(intDiv(t, 3)))
FROM (
    SELECT intDiv(number, 4) AS t, number % 4 AS j,
           ['gpt-4o', 'gpt-4o-mini', 'gpt-4.1', 'o3-mini', 'claude-sonnet-4-5', 'claude-haiku-4-5', 'gemini-2.5-pro',
            'mistral-large'][1 + sipHash64(intDiv(number, 4), 102) % 8] AS model,
           ['search_docs', 'get_order_status', 'run_sql', 'fetch_url', 'send_email', 'calculator'][1 + sipHash64(intDiv(number, 4), 103) % 6] AS tool,
           200 + sipHash64(number, 4) % 4000 AS inp, 20 + sipHash64(number, 8) % 800 AS outp,
           (j IN (1, 2) AND sipHash64(number, 9) % 100 < 4) AS err
    FROM numbers({traces:UInt64} * 4)
);
;;
INSERT INTO spans (TenantId, Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
    ResourceAttributes, SpanAttributes, Duration, StatusCode, Operation, Provider, RequestModel, ResponseModel,
    InputTokens, OutputTokens, CacheReadTokens, CostTotal, ToolName, ConversationId, ErrorType)
SELECT tenant, ts, trace_id, span_id, parent, if(s.j < 4, g.SpanName, s.other_name), if(j IN (1, 2), 'Client', 'Internal'), service,
       map('service.name', service, 'deployment.environment', 'bench'), attrs, dur,
       if(g.StatusCode != '', g.StatusCode, 'Unset'), g.Operation, g.Provider, g.RequestModel, g.ResponseModel,
       g.InputTokens, g.OutputTokens, g.CacheReadTokens, g.CostTotal, g.ToolName, g.ConversationId, g.ErrorType
FROM (
    SELECT intDiv(number, 20) AS t, number % 20 AS j,
           concat('tenant-', toString(sipHash64(t, 100) % 50)) AS tenant,
           concat('svc-', toString(sipHash64(t, 101) % 50)) AS service,
           now64(9) - toIntervalMillisecond(t * {span_ms:UInt64}) + toIntervalMillisecond(j * 40) AS ts,
           concat(leftPad(lower(hex(sipHash64(t, 1))), 16, '0'), leftPad(lower(hex(sipHash64(t, 2))), 16, '0')) AS trace_id,
           leftPad(lower(hex(sipHash64(t, j, 3))), 16, '0') AS span_id,
           if(j = 0, '', leftPad(lower(hex(sipHash64(t, if(j < 4, 0, 1 + j % 2), 3))), 16, '0')) AS parent,
           ['http GET /v1/search', 'db SELECT orders', 'cache get', 'render template'][1 + j % 4] AS other_name,
           if(j IN (1, 2) AND t % 5 = 0,
              map('gen_ai.input.messages', concat('[{"role":"user","parts":[{"type":"text","content":"', repeat('Tell me about order status and shipping. ', 20), '"}]}]'),
                  'gen_ai.output.messages', concat('[{"role":"assistant","parts":[{"type":"text","content":"', repeat('Your order ships tomorrow. ', 12), '"}]}]')),
              map('bench.span', toString(j))) AS attrs,
           toUInt64(multiIf(j = 0, 2500, j < 4, 400, 5 + sipHash64(t, j) % 200) * 1000000) AS dur
    FROM numbers({traces:UInt64} * 20)
) AS s
LEFT JOIN (SELECT SpanId, SpanName, StatusCode, Operation, Provider, RequestModel, ResponseModel, InputTokens, OutputTokens,
                  CacheReadTokens, CostTotal, ToolName, ConversationId, ErrorType FROM genai_calls) AS g
    ON g.SpanId = s.span_id
SETTINGS join_use_nulls = 0;
