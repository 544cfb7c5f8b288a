ALTER TABLE spans_local ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS DuplicateOf String DEFAULT '' CODEC(ZSTD(1));

ALTER TABLE spans ON CLUSTER spanhouse_cluster ADD COLUMN IF NOT EXISTS DuplicateOf String DEFAULT '';
