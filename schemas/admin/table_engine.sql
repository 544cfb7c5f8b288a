-- A table's full engine clause (its TTL, if any, is part of it).
SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {table:String}
