-- Who ran a task, with which agent and prompt version, and how it ended (docs/instrumentation.md "Task
-- outcomes"): typed columns of spans and genai_calls, filled by normalize from gen_ai.agent.version,
-- gen_ai.prompt.name and the spanhouse.* attributes the instrumentation helpers set. Rows written before this
-- migration read '' in each. Outcome is one of completed, surfaced, errored, timed_out, or ''.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS UserId String DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE spans ADD COLUMN IF NOT EXISTS AgentVersion LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE spans ADD COLUMN IF NOT EXISTS PromptName LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE spans ADD COLUMN IF NOT EXISTS PromptVersion LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE spans ADD COLUMN IF NOT EXISTS Outcome LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE spans ADD COLUMN IF NOT EXISTS OutcomeReason String DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE genai_calls ADD COLUMN IF NOT EXISTS UserId String DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE genai_calls ADD COLUMN IF NOT EXISTS AgentVersion LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE genai_calls ADD COLUMN IF NOT EXISTS PromptName LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE genai_calls ADD COLUMN IF NOT EXISTS PromptVersion LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE genai_calls ADD COLUMN IF NOT EXISTS Outcome LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE genai_calls ADD COLUMN IF NOT EXISTS OutcomeReason String DEFAULT '' CODEC(ZSTD(1));
