-- Idempotent inserts: the writer sends every batch with an insert_deduplication_token
-- and sends it again, with the same token, after a failure or a crash. MergeTree
-- tables that are not Replicated deduplicate only with a window of remembered
-- blocks; the views' target tables need one too, or a retried insert that the
-- source table drops would still be counted twice in the rollups.
ALTER TABLE spans MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE spans_trace_id_ts MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE genai_calls MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE genai_usage_1m MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE genai_usage_1h MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE trace_costs MODIFY SETTING non_replicated_deduplication_window = 1000;
