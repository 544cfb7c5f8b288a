-- Insert and merge memory of the wide tables. A part in the Wide format keeps a
-- compression buffer and codec state for every column stream while it is
-- written, so a 20,000-row insert into spans (some 90 streams with the maps and
-- nested columns) took ~310 MiB of engine memory with the defaults, and merges
-- more. Parts below 128 MiB are written Compact (one stream for all columns),
-- and blocks are compressed 64-256 KiB at a time instead of up to 1 MiB: the
-- same insert takes ~95 MiB. Larger merged parts stay Wide.
ALTER TABLE spans MODIFY SETTING min_bytes_for_wide_part = 134217728, min_compress_block_size = 65536, max_compress_block_size = 262144;
ALTER TABLE genai_calls MODIFY SETTING min_bytes_for_wide_part = 134217728, min_compress_block_size = 65536, max_compress_block_size = 262144;
