-- Content archiving, step 2 of 2: in one `spans` partition, replace each content value of rows older than
-- the cutoff by its reference, but only a value genai_content holds (same tenant, trace, span, key and
-- SHA-256): content that arrived after the copy, or that a crash kept from being copied, stays as it is until
-- a later run copies it. A mutation: the engine rewrites the partition's parts in the background.
ALTER TABLE spans
UPDATE
    SpanAttributes = mapApply((k, v) -> (k, if(
        match(toString(k), {content_keys:String}) AND v != '' AND NOT match(v, {reference:String})
            AND (TenantId, TraceId, SpanId, toString(k), lower(hex(SHA256(v)))) IN (
                SELECT TenantId, TraceId, SpanId, Key, toString(Sha256) FROM genai_content
                WHERE _partition_id = {partition:String}),
        concat('spanhouse:content:sha256:', lower(hex(SHA256(v))), ';kept-until:',
               if({archive_days:UInt32} = 0, 'forever',
                  toString(toDate(toDateTime(Timestamp) + toIntervalDay({archive_days:UInt32}), 'UTC')))),
        v)), SpanAttributes),
    `Events.Attributes` = arrayMap((n, a) -> mapApply((k, v) -> (k, if(
        (match(toString(k), {content_keys:String})
            OR (has({message_events:Array(String)}, toString(n)) AND has({event_keys:Array(String)}, toString(k))))
            AND v != '' AND NOT match(v, {reference:String})
            AND (TenantId, TraceId, SpanId, concat('event:', toString(n), ':', toString(k)), lower(hex(SHA256(v)))) IN (
                SELECT TenantId, TraceId, SpanId, Key, toString(Sha256) FROM genai_content
                WHERE _partition_id = {partition:String}),
        concat('spanhouse:content:sha256:', lower(hex(SHA256(v))), ';kept-until:',
               if({archive_days:UInt32} = 0, 'forever',
                  toString(toDate(toDateTime(Timestamp) + toIntervalDay({archive_days:UInt32}), 'UTC')))),
        v)), a), `Events.Name`, `Events.Attributes`)
IN PARTITION ID {partition:String}
WHERE Timestamp < fromUnixTimestamp64Nano({cutoff_ns:Int64})
  AND (TenantId, TraceId, SpanId) IN (
      SELECT TenantId, TraceId, SpanId FROM genai_content WHERE _partition_id = {partition:String})
