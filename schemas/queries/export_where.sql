-- `spanhouse export --where CONDITION` (admin keys only): the traces with a span in [since, until) for which
-- CONDITION, an SQL expression over the `spans` table's columns, holds; newest first, at most {limit}.
-- {condition} is the caller's own SQL, put in place after the parameters; the statement runs under the query
-- endpoint's read policy (read-only, limits) like any other.
SELECT TraceId AS trace_id
FROM spans
WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
  AND ({tenant:String} = '' OR TenantId = {tenant:String})
  AND ({condition})
GROUP BY TraceId
ORDER BY min(Timestamp) DESC, TraceId
LIMIT {limit:UInt32};
