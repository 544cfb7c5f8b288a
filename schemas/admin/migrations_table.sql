-- Which numbered migrations have been applied to this store.
CREATE TABLE IF NOT EXISTS spanhouse_migrations
(
    Version UInt32,
    Name String,
    Checksum String,
    AppliedAt DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(AppliedAt)
ORDER BY Version;
