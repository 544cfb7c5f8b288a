-- `spanhouse trace ID`: every span of one trace, found through the TraceId
-- bloom-filter index of each table (no lookup table, so a tenant's API key can
-- run it). GenAI calls whose full span was not kept (sampling) come from
-- genai_calls, which keeps every call. DuplicateOf names the span that counts for a
-- call two instrumentors traced (processors/dedup.py): such a span adds nothing to totals.
SELECT * FROM (
    SELECT SpanId, ParentSpanId, SpanName, ServiceName, Timestamp, Duration, StatusCode, Operation,
           toString(if(ResponseModel != '', ResponseModel, RequestModel)) AS Model, InputTokens, OutputTokens,
           CacheReadTokens, CostTotal, DuplicateOf
    FROM spans
    WHERE TraceId = {trace_id:String}
    UNION ALL
    SELECT SpanId, ParentSpanId, SpanName, ServiceName, Timestamp, Duration, StatusCode, Operation, toString(Model),
           InputTokens, OutputTokens, CacheReadTokens, CostTotal, '' AS DuplicateOf
    FROM genai_calls
    WHERE TraceId = {trace_id:String}
      AND SpanId NOT IN (SELECT SpanId FROM spans WHERE TraceId = {trace_id:String})
)
ORDER BY Timestamp, SpanId;
