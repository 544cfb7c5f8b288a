-- Tables a tenant key may read through the query endpoint: MergeTree tables with a TenantId column,
-- each read filtered to the tenant (views and tables without the column are refused).
SELECT name
FROM system.tables
WHERE database = currentDatabase()
  AND engine LIKE '%MergeTree'
  AND name IN (SELECT table FROM system.columns WHERE database = currentDatabase() AND name = 'TenantId')
