CREATE VIEW IF NOT EXISTS otel_traces ON CLUSTER spanhouse_cluster AS
SELECT
    Timestamp,
    TraceId,
    SpanId,
    ParentSpanId,
    TraceState,
    SpanName,
    SpanKind,
    ServiceName,
    ResourceAttributes,
    ScopeName,
    ScopeVersion,
    SpanAttributes,
    Duration,
    StatusCode,
    StatusMessage,
    `Events.Timestamp`,
    `Events.Name`,
    `Events.Attributes`,
    `Links.TraceId`,
    `Links.SpanId`,
    `Links.TraceState`,
    `Links.Attributes`,
    TenantId
FROM spans;

CREATE VIEW IF NOT EXISTS otel_traces_trace_id_ts ON CLUSTER spanhouse_cluster AS
SELECT
    TraceId,
    min(toDateTime(Timestamp)) AS Start,
    max(toDateTime(Timestamp + toIntervalNanosecond(Duration))) AS End,
    TenantId
FROM spans
WHERE TraceId != ''
GROUP BY TenantId, TraceId;
