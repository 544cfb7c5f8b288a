-- What ClickHouse's HTTP interface tells its clients about the engine behind the query endpoint: the version
-- in error messages, the time zone in X-ClickHouse-Timezone, the one database a request may name.
SELECT version(), timezone(), currentDatabase()
