-- The tenants, services, models and tools seen in the time range (at most 200 each): the choices the web
-- UI's filters offer.
SELECT
    arraySort(groupUniqArray(200)(toString(TenantId))) AS tenants,
    arraySort(groupUniqArray(200)(toString(ServiceName))) AS services,
    arraySort(groupUniqArrayIf(200)(toString(Model), Model != '')) AS models,
    arraySort(groupUniqArrayIf(200)(toString(ToolName), ToolName != '')) AS tools
FROM genai_calls
WHERE Timestamp >= {since:DateTime64(3)} AND Timestamp < {until:DateTime64(3)}
  AND ({tenant:String} = '' OR TenantId = {tenant:String});
