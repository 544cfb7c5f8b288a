// The Alerts tab: alert episodes with their latest state (`spanhouse alerts`), firing first.
import {h, clear, int, when, table} from "./dom.js";
import {api} from "./api.js";
import {filterBar, currentParams, apiParams} from "./filters.js";

const FILTERS = ["tenant"];

export async function renderAlerts(ctx) {
  const results = h("section", {class: "results", "aria-live": "polite"}, h("p", {class: "loading"}, "Loading alerts…"));
  const load = (params) => show(ctx, results, params);
  clear(ctx.main).append(h("h1", {class: "visually-hidden"}, "Alerts"), filterBar(ctx, FILTERS, load), results);
  await load(currentParams());
}

async function show(ctx, results, params) {
  const doc = await api("alerts", apiParams(params, FILTERS));
  clear(results);
  if (!doc.alerts.length) {
    results.appendChild(h("div", {class: "empty"}, h("h2", {}, "No alerts in this time range"),
      h("p", {}, "Alert rules (cost spike, error spike, secret detected, trace budget, pipeline health) are "
        + "configured under alerts: in the collector's configuration; see docs/alerts.md.")));
    return;
  }
  results.appendChild(table([
    {label: "Status", key: "status", cell: (r) => h("span", {class: "badge " + (r.status === "firing" ? "bad" : "ok")},
      r.status)},
    {label: "Alert", key: "alertname", class: "name", cell: (r) => r.alertname},
    ctx.who.admin ? {label: "Tenant", key: "tenant", cell: (r) => r.tenant} : null,
    {label: "Started", key: "starts", cell: (r) => when(r.starts_at)},
    {label: "Ended", key: "ends", cell: (r) => when(r.ends_at)},
    {label: "Summary", key: "summary", cell: (r) => r.summary},
    {label: "Notifications", key: "sent", num: true, cell: (r) => int(r.notifications)},
  ].filter(Boolean), doc.alerts, (r) => ({"data-status": r.status})));
}
