-- What a ClickHouse client reads when it connects (clickhouse-connect: SELECT name, value, readonly FROM
-- system.settings), answered for the query endpoint: every engine setting, readonly = 0 only for those a caller
-- may send ({writable}), and the endpoint's own limits as their values ({limits}). It runs with no caller
-- input but the output format, so every key, tenant or admin, gets the same answer.
SELECT name,
       if(mapContains({limits:Map(String, String)}, name), {limits:Map(String, String)}[name], value) AS value,
       toUInt8(NOT has({writable:Array(String)}, name)) AS readonly
FROM system.settings
LIMIT 10000
