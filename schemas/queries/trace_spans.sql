-- `spanhouse trace ID` and the web UI's trace page: every span of one trace, found through the TraceId
-- bloom-filter index of each table (no lookup table, so a tenant's API key can run it). GenAI calls whose
-- full span was not kept (sampling) come from genai_calls, which keeps every call (without attributes,
-- events or links). DuplicateOf names the span that counts for a call two instrumentors traced
-- (processors/dedup.py): such a span adds nothing to totals.
SELECT * FROM (
    SELECT SpanId, ParentSpanId, SpanName, ServiceName, Timestamp, Duration, StatusCode, Operation,
           toString(if(ResponseModel != '', ResponseModel, RequestModel)) AS Model, InputTokens, OutputTokens,
           CacheReadTokens, CostTotal, DuplicateOf,
           TenantId, SpanKind, StatusMessage, toString(Provider) AS ProviderName, CacheWriteTokens, ReasoningTokens,
           CostInput, CostOutput, CostCacheRead, CostCacheWrite, TimeToFirstToken,
           CAST(FinishReasons, 'Array(String)') AS Finish, toString(ToolName) AS Tool, ConversationId, ErrorType,
           CAST(SpanAttributes, 'Map(String, String)') AS Attributes,
           CAST(ResourceAttributes, 'Map(String, String)') AS Resource,
           arrayMap((t, n, a) -> (toString(t), toString(n), CAST(a, 'Map(String, String)')),
                    Events.Timestamp, Events.Name, Events.Attributes) AS EventList,
           arrayMap((t, s, a) -> (t, s, CAST(a, 'Map(String, String)')),
                    Links.TraceId, Links.SpanId, Links.Attributes) AS LinkList,
           1 AS Kept
    FROM spans
    WHERE TraceId = {trace_id:String}
    UNION ALL
    SELECT SpanId, ParentSpanId, SpanName, ServiceName, Timestamp, Duration, StatusCode, Operation, toString(Model),
           InputTokens, OutputTokens, CacheReadTokens, CostTotal, '' AS DuplicateOf,
           TenantId, '' AS SpanKind, '' AS StatusMessage, toString(Provider), CacheWriteTokens, ReasoningTokens,
           CostInput, CostOutput, CostCacheRead, CostCacheWrite, TimeToFirstToken,
           CAST(FinishReasons, 'Array(String)'), toString(ToolName), ConversationId, ErrorType,
           CAST(map(), 'Map(String, String)'), CAST(map(), 'Map(String, String)'),
           CAST([], 'Array(Tuple(String, String, Map(String, String)))'),
           CAST([], 'Array(Tuple(String, String, Map(String, String)))'),
           0 AS Kept
    FROM genai_calls
    WHERE TraceId = {trace_id:String}
      AND SpanId NOT IN (SELECT SpanId FROM spans WHERE TraceId = {trace_id:String})
)
ORDER BY Timestamp, SpanId;
