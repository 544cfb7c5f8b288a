-- Candidates for the tables a tenant key may read through the query endpoint: MergeTree tables and plain views
-- with a TenantId column (name, engine, a view's SELECT). Each read is filtered to the tenant by name
-- (additional_table_filters applies to a view's name as to a table's). tenant_scope keeps a view only when its
-- SELECT reads nothing but such tables, so the tables' own filters confine it as well. Materialized views,
-- dictionaries and tables without the column are refused.
SELECT name, engine, as_select
FROM system.tables
WHERE database = currentDatabase()
  AND (engine LIKE '%MergeTree' OR engine = 'View')
  AND name IN (SELECT table FROM system.columns WHERE database = currentDatabase() AND name = 'TenantId')
