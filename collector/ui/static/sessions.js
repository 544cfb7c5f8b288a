// The Sessions tab: conversations (gen_ai.conversation.id) with their user, turns, cost, duration and task
// outcomes, linking to traces. The rows are `spanhouse sessions`' (schemas/queries/sessions.sql).
import {h, clear, int, usd, ms, when, table, emptyState} from "./dom.js";
import {api} from "./api.js";
import {filterBar, currentParams, updateParams, apiParams} from "./filters.js";

const FILTERS = ["tenant", "service", "conversation", "user"];
// How tasks ended, as the query counts them; shown where non-zero.
const OUTCOMES = [["completed", "completed"], ["surfaced", "surfaced"], ["errored", "errored"],
  ["timed_out", "timed out"], ["no_outcome", "no outcome"]];

function outcomes(r) {
  const parts = OUTCOMES.filter(([key]) => r[key] > 0).map(([key, label]) =>
    h("span", {class: "outcome outcome-" + key, "data-outcome": key}, `${int(r[key])} ${label}`));
  return parts.length ? h("span", {class: "outcomes"}, parts) : h("span", {class: "muted"}, "–");
}

export async function renderSessions(ctx) {
  const results = h("section", {class: "results", "aria-live": "polite"}, h("p", {class: "loading"}, "Loading sessions…"));
  const load = (params) => show(ctx, results, params);
  clear(ctx.main).append(h("h1", {class: "visually-hidden"}, "Sessions"), filterBar(ctx, FILTERS, load), results);
  await load(currentParams());
}

async function show(ctx, results, params) {
  results.classList.add("busy");
  const doc = await api("sessions", apiParams(params, FILTERS.concat(["page"])));
  results.classList.remove("busy");
  clear(results);
  if (!doc.sessions.length) {
    results.appendChild(emptyState(ctx.who, "No conversations in this time range",
      "Calls that carry gen_ai.conversation.id are grouped into sessions here."));
    return;
  }
  results.appendChild(table([
    {label: "Conversation", key: "conversation", class: "name", cell: (r) => r.conversation_id},
    ctx.who.admin ? {label: "Tenant", key: "tenant", cell: (r) => r.tenant} : null,
    {label: "User", key: "user", cell: (r) => r.user_id ? h("span", {class: "mono", title: r.user_id},
      r.user_id.slice(0, 12) + (r.users > 1 ? ` +${r.users - 1}` : "")) : h("span", {class: "muted"}, "–")},
    {label: "Last activity", key: "last", cell: (r) => when(r.last_seen)},
    {label: "Turns", key: "turns", num: true, cell: (r) => int(r.turns)},
    {label: "LLM calls", key: "calls", num: true, cell: (r) => int(r.llm_calls)},
    {label: "Tokens", key: "tokens", num: true, cell: (r) => int(r.tokens)},
    {label: "Cost", key: "cost", num: true, cell: (r) => usd(r.cost_usd)},
    {label: "Duration", key: "duration", num: true, cell: (r) => ms(r.duration_ms)},
    {label: "Errors", key: "errors", num: true, cell: (r) => int(r.errors)},
    {label: "Tasks", key: "tasks", num: true, cell: (r) => int(r.tasks)},
    {label: "Outcomes", key: "outcomes", cell: outcomes},
    {label: "Traces", key: "traces", cell: (r) => h("span", {class: "trace-list"}, r.traces.slice(0, 3).map((id) =>
      h("a", {href: "/ui/trace/" + encodeURIComponent(id), title: id}, id.slice(0, 8))),
      r.traces.length > 3 ? h("span", {class: "muted"}, `+${r.traces.length - 3}`) : null)},
  ].filter(Boolean), doc.sessions, (r) => ({"data-conversation": r.conversation_id})));
  results.appendChild(h("nav", {class: "pager", "aria-label": "Pages"},
    h("button", {type: "button", disabled: doc.page === 0,
      onclick: () => show(ctx, results, updateParams({page: doc.page - 1 || ""}))}, "← Previous"),
    h("span", {class: "muted"}, `Page ${doc.page + 1}`),
    h("button", {type: "button", disabled: !doc.more,
      onclick: () => show(ctx, results, updateParams({page: doc.page + 1}))}, "Next →")));
}
