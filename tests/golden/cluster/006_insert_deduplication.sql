ALTER TABLE spans_local ON CLUSTER spanhouse_cluster MODIFY SETTING replicated_deduplication_window = 1000;

ALTER TABLE spans_trace_id_ts_local ON CLUSTER spanhouse_cluster MODIFY SETTING replicated_deduplication_window = 1000;

ALTER TABLE genai_calls_local ON CLUSTER spanhouse_cluster MODIFY SETTING replicated_deduplication_window = 1000;

ALTER TABLE genai_usage_1m_local ON CLUSTER spanhouse_cluster MODIFY SETTING replicated_deduplication_window = 1000;

ALTER TABLE genai_usage_1h_local ON CLUSTER spanhouse_cluster MODIFY SETTING replicated_deduplication_window = 1000;

ALTER TABLE trace_costs_local ON CLUSTER spanhouse_cluster MODIFY SETTING replicated_deduplication_window = 1000;
