// Reads spans back through the collector's ClickHouse HTTP interface with the official ClickHouse JS client
// (@clickhouse/client), as any Node.js application would (used by tests/test_node_clickhouse_client.py).
// Usage: node query.js URL USER KEY   -> one JSON line with what each call returned
"use strict";
const { createClient } = require("@clickhouse/client");

async function main() {
  const [url, username, password] = process.argv.slice(2);
  const client = createClient({ url, username, password, request_timeout: 30000 });
  const out = {};
  try {
    out.ping = (await client.ping()).success;
    const byTenant = "SELECT TenantId, toUInt32(count()) AS spans FROM spans GROUP BY TenantId ORDER BY TenantId";
    out.json = (await (await client.query({ query: byTenant, format: "JSON" })).json()).data;
    out.jsonEachRow = await (await client.query({ query: byTenant, format: "JSONEachRow" })).json();
    const params = await client.query({
      query: "SELECT count() AS n FROM spans WHERE TenantId = {tenant:String}",
      format: "JSONEachRow",
      query_params: { tenant: "globex" },
    });
    out.params = await params.json();
    try {
      await client.command({ query: "DROP TABLE spans" });
      out.drop = "not refused";
    } catch (err) {
      out.drop = { code: err.code, type: err.type };
    }
  } finally {
    await client.close();
  }
  // gzip both ways: the request body compressed, and the reply asked for with enable_http_compression.
  const compressed = createClient({ url, username, password, compression: { request: true, response: true } });
  try {
    const rs = await compressed.query({ query: "SELECT count() AS n FROM spans", format: "JSONEachRow" });
    out.compressedEncoding = rs.response_headers["content-encoding"];
    out.compressed = await rs.json();
  } finally {
    await compressed.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
