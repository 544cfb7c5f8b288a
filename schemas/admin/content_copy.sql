-- Content archiving, step 1 of 2: copy the content values of one `spans` partition's rows older than the
-- cutoff into genai_content, the exact bytes with their SHA-256, at most max_values values a run. Values
-- already archived (same tenant, trace, span, key and hash) and references are skipped, so running it again,
-- or after a crash, copies only what is missing. Event attributes are keyed `event:<event name>:<key>`.
INSERT INTO genai_content (TenantId, TraceId, SpanId, Timestamp, Key, Content, Sha256, ArchivedAt)
SELECT TenantId, TraceId, SpanId, Timestamp, Key, Content, Sha256, now64(3)
FROM
(
    SELECT TenantId, TraceId, SpanId, Timestamp, item.1 AS Key, item.2 AS Content,
           lower(hex(SHA256(item.2))) AS Sha256
    FROM spans
    ARRAY JOIN arrayConcat(
        arrayFilter(kv -> match(kv.1, {content_keys:String}) AND kv.2 != '',
                    arrayMap((k, v) -> (toString(k), v), mapKeys(SpanAttributes), mapValues(SpanAttributes))),
        arrayFlatten(arrayMap((n, a) -> arrayMap(kv -> (concat('event:', toString(n), ':', kv.1), kv.2),
            arrayFilter(kv -> (match(kv.1, {content_keys:String})
                               OR (has({message_events:Array(String)}, toString(n)) AND has({event_keys:Array(String)}, kv.1)))
                              AND kv.2 != '',
                        arrayMap((k, v) -> (toString(k), v), mapKeys(a), mapValues(a)))),
            `Events.Name`, `Events.Attributes`))) AS item
    WHERE _partition_id = {partition:String} AND Timestamp < fromUnixTimestamp64Nano({cutoff_ns:Int64})
      AND NOT match(item.2, {reference:String})
)
WHERE (TenantId, TraceId, SpanId, Key, Sha256) NOT IN (
    SELECT TenantId, TraceId, SpanId, Key, toString(Sha256) FROM genai_content WHERE _partition_id = {partition:String})
LIMIT {max_values:UInt64}
