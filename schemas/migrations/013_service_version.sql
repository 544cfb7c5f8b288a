-- The version and deployment environment of the service that sent a span, as typed columns of spans and
-- genai_calls: normalize copies them from the resource attributes service.version and
-- deployment.environment.name (older name: deployment.environment). `spanhouse compare` groups calls by
-- them (a canary version against the stable one, staging against production). Rows stored before this
-- migration hold ''; their resource attributes still have the values in spans.ResourceAttributes.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS ServiceVersion LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE spans ADD COLUMN IF NOT EXISTS DeploymentEnvironment LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE genai_calls ADD COLUMN IF NOT EXISTS ServiceVersion LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
ALTER TABLE genai_calls ADD COLUMN IF NOT EXISTS DeploymentEnvironment LowCardinality(String) DEFAULT '' CODEC(ZSTD(1));
