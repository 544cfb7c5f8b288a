ALTER TABLE spans_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS ServiceVersion LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE spans ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS ServiceVersion LowCardinality(String) DEFAULT '';

ALTER TABLE spans_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS DeploymentEnvironment LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE spans ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS DeploymentEnvironment LowCardinality(String) DEFAULT '';

ALTER TABLE genai_calls_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS ServiceVersion LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE genai_calls ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS ServiceVersion LowCardinality(String) DEFAULT '';

ALTER TABLE genai_calls_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS DeploymentEnvironment LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE genai_calls ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS DeploymentEnvironment LowCardinality(String) DEFAULT '';
