-- Column names and ClickHouse types of one table, in table order: the writer builds its Arrow schema from them.
SELECT name, type
FROM system.columns
WHERE database = currentDatabase() AND table = {table:String}
ORDER BY position
