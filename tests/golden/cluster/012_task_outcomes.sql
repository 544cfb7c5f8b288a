ALTER TABLE spans_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS UserId String DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE spans ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS UserId String DEFAULT '';

ALTER TABLE spans_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS AgentVersion LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE spans ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS AgentVersion LowCardinality(String) DEFAULT '';

ALTER TABLE spans_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS PromptName LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE spans ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS PromptName LowCardinality(String) DEFAULT '';

ALTER TABLE spans_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS PromptVersion LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE spans ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS PromptVersion LowCardinality(String) DEFAULT '';

ALTER TABLE spans_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS Outcome LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE spans ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS Outcome LowCardinality(String) DEFAULT '';

ALTER TABLE spans_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS OutcomeReason String DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE spans ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS OutcomeReason String DEFAULT '';

ALTER TABLE genai_calls_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS UserId String DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE genai_calls ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS UserId String DEFAULT '';

ALTER TABLE genai_calls_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS AgentVersion LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE genai_calls ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS AgentVersion LowCardinality(String) DEFAULT '';

ALTER TABLE genai_calls_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS PromptName LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE genai_calls ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS PromptName LowCardinality(String) DEFAULT '';

ALTER TABLE genai_calls_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS PromptVersion LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE genai_calls ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS PromptVersion LowCardinality(String) DEFAULT '';

ALTER TABLE genai_calls_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS Outcome LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE genai_calls ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS Outcome LowCardinality(String) DEFAULT '';

ALTER TABLE genai_calls_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS OutcomeReason String DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE genai_calls ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS OutcomeReason String DEFAULT '';
