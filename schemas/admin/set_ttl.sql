-- Retention for one table; {table}, {time_expr} and {days} are filled from configuration.
ALTER TABLE {table} MODIFY TTL {time_expr} + toIntervalDay({days});
