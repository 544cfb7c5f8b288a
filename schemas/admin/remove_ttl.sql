-- Keep rows forever (retention set to 0 days).
ALTER TABLE {table} REMOVE TTL;
