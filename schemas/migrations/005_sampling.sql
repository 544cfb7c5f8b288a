-- The probability each stored span's trace was kept with by sampling (1 when
-- not sampled). Weight rows by 1 / SampleRate to estimate totals from spans;
-- exact totals come from genai_calls and the rollups, which are never sampled.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS SampleRate Float64 DEFAULT 1 CODEC(ZSTD(1));
