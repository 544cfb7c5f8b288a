-- Content archiving: the store's unfinished mutations of `spans`, whether each is a content rewrite
-- (content_rewrite.sql), and the reason the engine gives when one keeps failing.
SELECT mutation_id, position(command, 'spanhouse:content:') > 0 AS ours, latest_fail_reason
FROM system.mutations
WHERE database = currentDatabase() AND table = 'spans' AND NOT is_done
ORDER BY create_time
