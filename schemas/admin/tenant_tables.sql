-- Tables a tenant key may read through the query endpoint: MergeTree tables and plain views with a TenantId column,
-- each read filtered to the tenant by name (additional_table_filters applies to a view's name as to a table's, and
-- the tables a view reads are filtered as well). Materialized views, dictionaries and tables without the column are
-- refused.
SELECT name
FROM system.tables
WHERE database = currentDatabase()
  AND (engine LIKE '%MergeTree' OR engine = 'View')
  AND name IN (SELECT table FROM system.columns WHERE database = currentDatabase() AND name = 'TenantId')
