-- The OpenTelemetry Collector ClickHouse exporter's trace tables, as views over spans: tools written for the
-- exporter's schema (Grafana's ClickHouse data source, its trace view and its own "Traces Explorer" and
-- "Service Dashboard") read spanhouse with their SQL unchanged. Same column names, types and order as the
-- exporter's otel_traces and otel_traces_trace_id_ts, plus TenantId last: the query endpoint confines a tenant
-- key's reads of these views to its rows like any tenant table (collector/query/tenant_scope.py), and the rows
-- come from spans, which is filtered too. Views hold no data, so retention and migrations of spans cover them.
CREATE VIEW IF NOT EXISTS otel_traces AS
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

-- Trace id -> the trace's first start and last end, the exporter's otel_traces_trace_id_ts. Grafana's data source
-- looks a trace's time range up here before it reads the trace's spans. Computed from spans per tenant (the
-- stored spans_trace_id_ts has no tenant column, so a tenant could not be confined to its rows of it); a
-- lookup by TraceId reads only the parts spans' trace-id bloom filter admits.
CREATE VIEW IF NOT EXISTS otel_traces_trace_id_ts AS
SELECT
    TraceId,
    min(toDateTime(Timestamp)) AS Start,
    max(toDateTime(Timestamp + toIntervalNanosecond(Duration))) AS End,
    TenantId
FROM spans
WHERE TraceId != ''
GROUP BY TenantId, TraceId;
