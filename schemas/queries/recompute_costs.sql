-- Recompute the cost of LLM calls from model_prices (the price table the
-- collector loaded), e.g. to check stored costs or re-price after a correction.
-- Matches like the collector for the common cases: the exact model name, else
-- the name without its date suffix (gpt-4o-2024-08-06 -> gpt-4o), with the
-- price in effect at the call's time. Cloud ids (Bedrock, Vertex) and aliases
-- are matched by the collector only: their recomputed cost is NULL here.
SELECT
    c.SpanId AS span_id,
    c.Model AS model,
    p.Model AS priced_as,
    c.Timestamp AS timestamp,
    c.CostTotal AS stored_usd,
    if(p.Model = '', NULL,
       (greatest(toInt64(c.inp) - toInt64(c.rd) - toInt64(c.wr), 0)
            * if(p.LongContextAboveTokens > 0 AND c.inp > p.LongContextAboveTokens, p.LongInputPerMTok, p.InputPerMTok)
        + c.rd * if(p.LongContextAboveTokens > 0 AND c.inp > p.LongContextAboveTokens, p.LongCacheReadPerMTok, p.CacheReadPerMTok)
        + c.wr * if(p.LongContextAboveTokens > 0 AND c.inp > p.LongContextAboveTokens, p.LongCacheWritePerMTok, p.CacheWritePerMTok)
        + c.out * if(p.LongContextAboveTokens > 0 AND c.inp > p.LongContextAboveTokens, p.LongOutputPerMTok, p.OutputPerMTok)) / 1e6) AS recomputed_usd
FROM
(
    SELECT
        SpanId, Model, Timestamp, CostTotal,
        toDateTime64(Timestamp, 3, 'UTC') AS ts,
        if(lower(Model) IN (SELECT Model FROM model_prices), lower(Model),
           replaceRegexpOne(lower(Model), '(-[0-9]{4}-[0-9]{2}-[0-9]{2}|[-@][0-9]{8})$', '')) AS key,
        ifNull(InputTokens, 0) AS inp, ifNull(OutputTokens, 0) AS out,
        ifNull(CacheReadTokens, 0) AS rd, ifNull(CacheWriteTokens, 0) AS wr
    FROM genai_calls
    WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
      AND Operation IN ('chat', 'text_completion', 'generate_content', 'embeddings')
      AND (InputTokens IS NOT NULL OR OutputTokens IS NOT NULL)
) AS c
ASOF LEFT JOIN
(
    SELECT *, EffectiveFrom AS ts FROM model_prices
) AS p
ON c.key = p.Model AND c.ts >= p.ts
ORDER BY c.Timestamp, c.SpanId;
