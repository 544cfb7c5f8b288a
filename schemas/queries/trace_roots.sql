-- For a page of traces (ids): the root span's name and the number of spans kept of each, read through
-- the TraceId bloom-filter index within the page's time range. The web UI's Traces tab runs it after
-- traces.sql, so the list itself stays on the small trace_costs table.
SELECT
    TraceId AS trace_id,
    argMin(SpanName, (ParentSpanId != '', Timestamp)) AS root_name,
    count() AS span_count
FROM spans
WHERE TraceId IN {ids:Array(String)}
  AND Timestamp >= {since:DateTime64(3)} - INTERVAL 1 DAY AND Timestamp < {until:DateTime64(3)} + INTERVAL 1 DAY
GROUP BY TraceId;
