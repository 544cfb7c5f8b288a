-- `spanhouse export --format otlp-json`: every kept span of the traces named by {trace_ids}, with what OTLP
-- needs to rebuild them: times in Unix nanoseconds, resource and scope, kind, status, events and links.
-- Found through the TraceId bloom-filter index, so a tenant's API key can run it (its rows only).
SELECT
    TenantId AS tenant,
    TraceId AS trace_id,
    SpanId AS span_id,
    ParentSpanId AS parent_span_id,
    TraceState AS trace_state,
    SpanName AS name,
    toString(SpanKind) AS kind,
    CAST(ResourceAttributes, 'Map(String, String)') AS resource,
    ScopeName AS scope_name,
    ScopeVersion AS scope_version,
    CAST(SpanAttributes, 'Map(String, String)') AS attributes,
    toUnixTimestamp64Nano(Timestamp) AS start_ns,
    Duration AS duration_ns,
    toString(StatusCode) AS status_code,
    StatusMessage AS status_message,
    arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS event_times,
    CAST(Events.Name, 'Array(String)') AS event_names,
    arrayMap(a -> CAST(a, 'Map(String, String)'), Events.Attributes) AS event_attributes,
    Links.TraceId AS link_trace_ids,
    Links.SpanId AS link_span_ids,
    Links.TraceState AS link_trace_states,
    arrayMap(a -> CAST(a, 'Map(String, String)'), Links.Attributes) AS link_attributes
FROM spans
WHERE TraceId IN {trace_ids:Array(String)}
ORDER BY TraceId, Timestamp, SpanId;
