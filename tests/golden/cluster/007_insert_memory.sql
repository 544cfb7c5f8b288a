ALTER TABLE spans_local ON CLUSTER spanhouse_cluster MODIFY SETTING min_bytes_for_wide_part = 134217728, min_compress_block_size = 65536, max_compress_block_size = 262144;

ALTER TABLE genai_calls_local ON CLUSTER spanhouse_cluster MODIFY SETTING min_bytes_for_wide_part = 134217728, min_compress_block_size = 65536, max_compress_block_size = 262144;
