-- The latest row of each alert episode still firing: the alert engine's state after a restart, so a
-- firing alert is neither sent again at once nor forgotten.
SELECT
    Fingerprint,
    argMax(TenantId, Timestamp),
    argMax(AlertName, Timestamp),
    argMax(Status, Timestamp) AS status,
    StartsAt,
    max(Timestamp),
    argMax(Labels, Timestamp),
    argMax(Annotations, Timestamp)
FROM alerts
GROUP BY Fingerprint, StartsAt
HAVING status = 'firing'
