-- Content archiving: the content values of one `spans` partition's rows older than the cutoff, counted by
-- state. unarchived: content not yet in genai_content; archived: copied but not yet replaced in `spans`;
-- referenced: already a reference. Content keys come from collector/content_keys.py (the parameters).
SELECT countIf(NOT is_ref AND NOT in_archive) AS unarchived_values,
       countIf(NOT is_ref AND in_archive) AS archived_values,
       countIf(is_ref) AS referenced_values
FROM
(
    SELECT match(item.2, {reference:String}) AS is_ref,
           (TenantId, TraceId, SpanId, item.1, lower(hex(SHA256(item.2)))) IN (
               SELECT TenantId, TraceId, SpanId, Key, toString(Sha256) FROM genai_content
               WHERE _partition_id = {partition:String}) AS in_archive
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
)
