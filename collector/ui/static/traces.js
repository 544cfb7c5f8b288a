// The Traces tab: traces matching the URL's filters (the API runs `spanhouse traces`' query), one page at a time.
import {h, clear, int, usd, ms, when, table, emptyState} from "./dom.js";
import {api} from "./api.js";
import {filterBar, currentParams, updateParams, apiParams} from "./filters.js";

const FILTERS = ["tenant", "service", "model", "tool", "q", "min_cost", "min_duration_ms", "errors", "sort"];

export async function renderTraces(ctx) {
  const results = h("section", {class: "results", "aria-live": "polite"});
  const load = (params) => showPage(ctx, results, params);
  clear(ctx.main).append(h("h1", {class: "visually-hidden"}, "Traces"), filterBar(ctx, FILTERS, load), results);
  await load(currentParams());
}

let generation = 0;

async function showPage(ctx, results, params) {
  const mine = ++generation; // a slower earlier answer must not overwrite a newer one
  results.classList.add("busy");
  if (!results.firstChild) results.appendChild(h("p", {class: "loading"}, "Loading traces…"));
  let doc;
  try {
    doc = await api("traces", apiParams(params, FILTERS.concat(["page"])));
  } catch (error) {
    if (mine !== generation) return;
    results.classList.remove("busy");
    clear(results).appendChild(h("div", {class: "empty error", role: "alert"}, h("p", {}, error.message)));
    return;
  }
  if (mine !== generation) return;
  results.classList.remove("busy");
  clear(results);
  if (!doc.traces.length) {
    const filtered = FILTERS.some((name) => name !== "sort" && params[name]);
    results.appendChild(filtered || doc.page
      ? h("div", {class: "empty"}, h("h2", {}, "No trace matches these filters"),
        h("p", {}, "Widen the time range or clear a filter."))
      : emptyState(ctx.who, "No traces in this time range yet",
        "Traces with GenAI calls show here as soon as the collector has written them."));
    return;
  }
  const columns = [
    {label: "Time", key: "time", cell: (r) => h("time", {datetime: r.start + "Z"}, when(r.start))},
    ctx.who.admin ? {label: "Tenant", key: "tenant", cell: (r) => r.tenant} : null,
    {label: "Service", key: "service", cell: (r) => r.services.join(", ")},
    {label: "Root span", key: "root", class: "name",
      cell: (r) => h("a", {href: "/ui/trace/" + encodeURIComponent(r.trace_id), class: "trace-link"},
        r.root_name || "(root not kept)")},
    {label: "Models", key: "models", cell: (r) => r.models.join(", ")},
    {label: "Input", key: "input", num: true, cell: (r) => int(r.input_tokens)},
    {label: "Cached", key: "cached", num: true, cell: (r) => int(r.cached_tokens)},
    {label: "Output", key: "output", num: true, cell: (r) => int(r.output_tokens)},
    {label: "Cost", key: "cost", num: true, cell: (r) => usd(r.cost_usd)},
    {label: "Tools", key: "tools", cell: (r) => r.tools.join(", ")},
    {label: "Spans", key: "spans", num: true, cell: (r) => int(r.span_count)},
    {label: "Duration", key: "duration", num: true, cell: (r) => ms(r.duration_ms)},
    {label: "Status", key: "status", cell: (r) => r.errors
      ? h("span", {class: "badge bad"}, r.errors + (r.errors === 1 ? " error" : " errors"))
      : h("span", {class: "badge ok"}, "ok")},
  ].filter(Boolean);
  results.appendChild(table(columns, doc.traces, (r) => ({
    class: "clickable" + (r.errors ? " has-error" : ""), "data-trace-id": r.trace_id,
    onclick: (event) => {
      if (event.target.closest("a")) return;
      location.href = "/ui/trace/" + encodeURIComponent(r.trace_id);
    },
  })));
  const pager = h("nav", {class: "pager", "aria-label": "Pages"},
    h("button", {type: "button", disabled: doc.page === 0, onclick: () => go(-1)}, "← Previous"),
    h("span", {class: "muted"}, `Page ${doc.page + 1}`),
    h("button", {type: "button", disabled: !doc.more, onclick: () => go(1)}, "Next →"));
  results.appendChild(pager);

  function go(step) {
    const next = updateParams({page: doc.page + step || ""});
    showPage(ctx, results, next);
  }
}
