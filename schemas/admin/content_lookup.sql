-- Archived content for references (collector/query/content.py, admin keys only): the rows of genai_content
-- with these hashes, narrowed to these spans when the caller knows them (empty: any span).
SELECT TenantId, TraceId, SpanId, Key, toString(Sha256) AS Sha, Content
FROM genai_content FINAL
WHERE Sha256 IN {hashes:Array(String)}
  AND (empty({spans:Array(String)}) OR SpanId IN {spans:Array(String)})
