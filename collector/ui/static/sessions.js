// The Sessions tab: conversations (gen_ai.conversation.id) with their user, turns, cost, duration and task
// outcomes, linking to traces. The rows are `spanhouse sessions`' (schemas/queries/sessions.sql).
import {h, clear, int, usd, ms, when, table, emptyState} from "./dom.js";
import {api} from "./api.js";
import {filterBar, currentParams, updateParams, apiParams} from "./filters.js";

const FILTERS = ["tenant", "service", "conversation", "user"];
// How tasks ended, as the query counts them; shown where non-zero.
const OUTCOMES = [["completed", "completed"], ["surfaced", "surfaced"], ["errored", "errored"],
  ["timed_out", "timed out"], ["no_outcome", "no outcome"]];

function chips(counts) {
  const parts = OUTCOMES.filter(([key]) => counts[key] > 0).map(([key, label]) =>
    h("span", {class: "outcome outcome-" + key, "data-outcome": key}, `${int(counts[key])} ${label}`));
  return parts.length ? h("span", {class: "outcomes"}, parts) : h("span", {class: "muted"}, "–");
}

const outcomes = (r) => chips(r);

/** A turn's tasks counted by outcome, as chips (a task without one counts as no_outcome). */
function turnOutcomes(turn) {
  const counts = {};
  for (const o of turn.outcomes) counts[o || "no_outcome"] = (counts[o || "no_outcome"] || 0) + 1;
  return chips(counts);
}

/** Open or close the row under a session that lists its turns (`spanhouse sessions CONVERSATION_ID`). */
async function toggleTurns(doc, r, button) {
  const row = button.closest("tr");
  const open = row.nextElementSibling && row.nextElementSibling.classList.contains("session-turns");
  if (open) {
    row.nextElementSibling.remove();
    button.setAttribute("aria-expanded", "false");
    return;
  }
  button.setAttribute("aria-expanded", "true");
  const cell = h("td", {colspan: row.children.length}, h("p", {class: "loading"}, "Loading turns…"));
  row.after(h("tr", {class: "session-turns", "data-turns-of": r.conversation_id}, cell));
  const turns = await api("session", {conversation: r.conversation_id, tenant: r.tenant, since: doc.since,
    until: doc.until});
  clear(cell).appendChild(table([
    {label: "Start", key: "start", cell: (t) => when(t.start)},
    {label: "Trace", key: "trace", cell: (t) => h("a", {href: "/ui/trace/" + encodeURIComponent(t.trace_id),
      class: "mono", title: t.trace_id}, t.trace_id.slice(0, 8))},
    {label: "Duration", key: "duration", num: true, cell: (t) => ms(t.duration_ms)},
    {label: "LLM calls", key: "calls", num: true, cell: (t) => int(t.llm_calls)},
    {label: "Tokens", key: "tokens", num: true, cell: (t) => int(t.tokens)},
    {label: "Cost", key: "cost", num: true, cell: (t) => usd(t.cost_usd)},
    {label: "Errors", key: "errors", num: true, cell: (t) => int(t.errors)},
    {label: "Outcomes", key: "outcomes", cell: turnOutcomes},
    {label: "Agents", key: "agents", cell: (t) => t.agents.filter(Boolean).join(", ")},
  ], turns.turns, (t) => ({"data-turn": t.trace_id})));
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
    {label: "Conversation", key: "conversation", class: "name", cell: (r) => h("button", {type: "button",
      class: "link", "aria-expanded": "false", title: "Show this conversation's turns",
      onclick: (event) => toggleTurns(doc, r, event.currentTarget)}, r.conversation_id)},
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
