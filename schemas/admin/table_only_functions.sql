-- Names that exist only as table functions (merge, remote, numbers, ...): refused anywhere in a tenant's SQL.
SELECT lower(name)
FROM system.table_functions
WHERE name NOT IN (SELECT name FROM system.functions)
