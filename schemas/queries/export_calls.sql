-- `spanhouse export` (call records): every GenAI call of the traces named by {trace_ids}, from genai_calls
-- (every call, exact tokens, cost and latency, never sampled) joined with its full `spans` row where one was
-- kept (attributes with the captured content, resource, status message). Kept = 0 when sampling dropped the
-- span row: the record then has the numbers without content. A span a second instrumentor traced for the same
-- request (DuplicateOf, processors/dedup.py) is left out, as every report leaves it out of totals. Found
-- through the TraceId bloom-filter index of both tables, so a tenant's API key can run it (its rows only).
SELECT
    c.TraceId AS trace_id,
    c.SpanId AS span_id,
    c.ParentSpanId AS parent_span_id,
    c.TenantId AS tenant,
    c.ServiceName AS service,
    toUnixTimestamp64Nano(c.Timestamp) AS start_ns,
    c.SpanName AS span_name,
    toString(c.Operation) AS operation,
    toString(c.Provider) AS provider,
    toString(c.RequestModel) AS request_model,
    toString(c.ResponseModel) AS response_model,
    c.ResponseId AS response_id,
    CAST(c.FinishReasons, 'Array(String)') AS finish_reasons,
    c.InputTokens AS input_tokens,
    c.OutputTokens AS output_tokens,
    c.CacheReadTokens AS cache_read_tokens,
    c.CacheWriteTokens AS cache_write_tokens,
    c.ReasoningTokens AS reasoning_tokens,
    c.CostInput AS cost_input,
    c.CostOutput AS cost_output,
    c.CostCacheRead AS cost_cache_read,
    c.CostCacheWrite AS cost_cache_write,
    c.CostTotal AS cost_total,
    c.Duration AS duration_ns,
    c.TimeToFirstToken AS ttft_s,
    toString(c.StatusCode) AS status_code,
    toString(c.ErrorType) AS error_type,
    toString(c.ToolName) AS tool_name,
    c.ConversationId AS conversation_id,
    toString(c.AgentName) AS agent_name,
    s.Kept AS kept,
    s.Attributes AS attributes,
    s.Resource AS resource,
    s.StatusMessage AS status_message
FROM genai_calls AS c
LEFT JOIN (
    SELECT TenantId, TraceId, SpanId, DuplicateOf, StatusMessage, 1 AS Kept,
           CAST(SpanAttributes, 'Map(String, String)') AS Attributes,
           CAST(ResourceAttributes, 'Map(String, String)') AS Resource
    FROM spans
    WHERE TraceId IN {trace_ids:Array(String)}
) AS s ON c.TenantId = s.TenantId AND c.TraceId = s.TraceId AND c.SpanId = s.SpanId
WHERE c.TraceId IN {trace_ids:Array(String)}
  AND s.DuplicateOf = ''
ORDER BY c.TraceId, c.Timestamp, c.SpanId;
