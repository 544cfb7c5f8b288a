-- Alert episodes (one per alert and start time) with their latest state, newest first: what
-- `spanhouse alerts` runs. With firing_only, the episodes still firing, whenever they began;
-- otherwise those with any event (fired, re-sent, resolved) in the time range.
SELECT
    argMax(Status, Timestamp) AS status,
    argMax(AlertName, Timestamp) AS alertname,
    argMax(TenantId, Timestamp) AS tenant,
    StartsAt AS starts_at,
    argMax(EndsAt, Timestamp) AS ends_at,
    argMax(Summary, Timestamp) AS summary,
    Fingerprint AS fingerprint,
    argMax(Labels, Timestamp) AS labels,
    argMax(Annotations, Timestamp) AS annotations,
    count() AS notifications
FROM alerts
WHERE ({tenant:String} = '' OR TenantId = {tenant:String})
GROUP BY Fingerprint, StartsAt
HAVING ({firing_only:UInt8} AND status = 'firing')
    OR (NOT {firing_only:UInt8} AND max(Timestamp) >= {since:DateTime64(3)} AND min(Timestamp) < {until:DateTime64(3)})
ORDER BY starts_at DESC, fingerprint
LIMIT {limit:UInt32}
