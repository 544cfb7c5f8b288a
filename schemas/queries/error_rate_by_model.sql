-- Share of LLM calls per model that failed (status Error or an error.type).
SELECT
    Model AS model,
    count() AS calls,
    countIf(StatusCode = 'Error' OR ErrorType != '') AS errors,
    round(errors / calls, 6) AS error_rate,
    topKIf(3)(ErrorType, ErrorType != '') AS top_error_types
FROM genai_calls
WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
  AND Operation NOT IN ('invoke_agent', 'create_agent', 'invoke_workflow', 'execute_tool')
GROUP BY model
ORDER BY error_rate DESC, model;
