-- `spanhouse trace ID`: every span of one trace. Spans come from `spans`,
-- narrowed to the trace's time range by the trace id lookup table; GenAI calls
-- whose full span was not kept (sampling) come from genai_calls, which keeps every call.
SELECT * FROM (
    SELECT SpanId, ParentSpanId, SpanName, ServiceName, Timestamp, Duration, StatusCode, Operation,
           toString(if(ResponseModel != '', ResponseModel, RequestModel)) AS Model, InputTokens, OutputTokens,
           CacheReadTokens, CostTotal
    FROM spans
    WHERE TraceId = {trace_id:String}
      AND Timestamp >= (SELECT min(Start) FROM spans_trace_id_ts WHERE TraceId = {trace_id:String}) - INTERVAL 1 SECOND
      AND Timestamp <= (SELECT max(End) FROM spans_trace_id_ts WHERE TraceId = {trace_id:String}) + INTERVAL 1 SECOND
    UNION ALL
    SELECT SpanId, ParentSpanId, SpanName, ServiceName, Timestamp, Duration, StatusCode, Operation, toString(Model),
           InputTokens, OutputTokens, CacheReadTokens, CostTotal
    FROM genai_calls
    WHERE TraceId = {trace_id:String}
      AND SpanId NOT IN (SELECT SpanId FROM spans WHERE TraceId = {trace_id:String})
)
ORDER BY Timestamp, SpanId;
