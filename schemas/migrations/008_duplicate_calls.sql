-- A GenAI span that describes the same request as another span of its trace (two instrumentors
-- tracing one call) names that span here; it stays in `spans` but is not a row of genai_calls.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS DuplicateOf String DEFAULT '' CODEC(ZSTD(1));
