-- Content archiving (collector/store/content_archive.py): the day partitions of `spans` holding rows that
-- started before the cutoff, oldest first, with what says whether a partition changed since it was last
-- found clean (its rows, parts and latest part change). `whole`: every row of it is older than the cutoff.
SELECT partition_id,
       sum(rows) AS rows,
       count() AS parts,
       toString(max(modification_time)) AS changed,
       max(max_time) < fromUnixTimestamp64Nano({cutoff_ns:Int64}) AS whole
FROM system.parts
WHERE database = currentDatabase() AND table = 'spans' AND active
GROUP BY partition_id
HAVING min(min_time) < fromUnixTimestamp64Nano({cutoff_ns:Int64})
ORDER BY partition_id
