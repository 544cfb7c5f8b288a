// One trace: a waterfall of its spans on a shared time axis, totals, and the chosen span's details
// (attributes, events, links; for a GenAI call its tokens, cost split and conversation as stored).
import {h, clear, int, usd, ms, when} from "./dom.js";
import {api} from "./api.js";

export async function renderTrace(ctx, traceId) {
  clear(ctx.main).appendChild(h("p", {class: "loading"}, "Loading trace…"));
  const doc = await api("trace/" + encodeURIComponent(traceId));
  const spans = doc.spans;
  const t = doc.totals;
  const detail = h("section", {class: "span-detail", id: "span-detail", "aria-live": "polite"},
    h("p", {class: "muted"}, "Select a span to see its attributes, events and messages."));
  const command = "spanhouse trace " + doc.trace_id;
  const copy = h("button", {type: "button", id: "copy-id", title: "Copy the trace id"}, "Copy id");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(doc.trace_id);
      copy.textContent = "Copied";
    } catch (e) {
      copy.textContent = "Select the id to copy";
    }
    setTimeout(() => { copy.textContent = "Copy id"; }, 1500);
  });
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const rows = ordered(spans, byId);
  const start = Math.min(...spans.map((s) => s.start_ns));
  const end = Math.max(...spans.map((s) => s.start_ns + s.duration_ms * 1e6));
  const total = Math.max(end - start, 1);
  const waterfall = h("div", {class: "waterfall", role: "list", "aria-label": "Spans"},
    h("div", {class: "wf-axis", "aria-hidden": "true"},
      h("span", {class: "wf-name"}, "Span"),
      h("span", {class: "wf-track"}, [0, 0.25, 0.5, 0.75, 1].map((f) =>
        tick(f, ms(f * total / 1e6))))));
  for (const {span, depth} of rows) {
    const bar = h("span", {class: "wf-bar" + (span.error ? " err" : "") + (span.operation ? " genai" : "")});
    bar.style.left = ((span.start_ns - start) / total * 100) + "%";
    bar.style.width = Math.max(span.duration_ms * 1e6 / total * 100, 0.3) + "%";
    const name = h("span", {class: "wf-name"}, span.error ? h("span", {class: "err-mark", title: "error"}, "!") : null,
      span.name || "(unnamed)", h("span", {class: "muted svc"}, span.service));
    name.style.paddingLeft = (depth * 14 + 4) + "px";
    const row = h("button", {type: "button", class: "wf-row", role: "listitem", "data-span-id": span.span_id,
      title: span.name}, name,
    h("span", {class: "wf-track"}, bar, h("span", {class: "wf-dur"}, ms(span.duration_ms))));
    row.addEventListener("click", (event) => {
      for (const other of waterfall.querySelectorAll(".wf-row.selected")) other.classList.remove("selected");
      row.classList.add("selected");
      showSpan(detail, span);
      if (event.isTrusted && matchMedia("(max-width: 900px)").matches) detail.scrollIntoView({block: "start"});
    });
    waterfall.appendChild(row);
  }
  clear(ctx.main).append(
    h("div", {class: "trace-head"},
      h("h1", {}, "Trace ", h("code", {id: "trace-id"}, doc.trace_id)), copy,
      h("p", {class: "muted"}, "CLI: ", h("code", {id: "cli-form"}, command))),
    h("div", {class: "cards", id: "totals"},
      card("Duration", ms(t.duration_ms), "duration"), card("Spans", int(t.spans), "spans"),
      card("Cost", usd(t.cost_usd) + (t.unpriced ? ` (+${t.unpriced} unpriced)` : ""), "cost"),
      card("Input tokens", int(t.input_tokens), "input"), card("Cached input", int(t.cached_tokens), "cached"),
      card("Cache writes", int(t.cache_write_tokens), "cache-write"),
      card("Output tokens", int(t.output_tokens), "output"), card("Reasoning", int(t.reasoning_tokens), "reasoning"),
      card("Errors", int(t.errors), "errors", t.errors ? "bad" : "")),
    h("div", {class: "trace-body"}, waterfall, detail));
  // Open on the first call with a conversation (else the root): what a reader came for.
  const first = rows.find(({span}) => span.messages.length) || rows[0];
  waterfall.querySelector(`[data-span-id="${CSS.escape(first.span.span_id)}"]`)?.click();
}

function tick(fraction, label) {
  const el = h("span", {class: "wf-tick"}, label);
  el.style.left = fraction * 100 + "%";
  return el;
}

function card(label, value, key, extra) {
  return h("div", {class: "card " + (extra || ""), "data-total": key}, h("span", {class: "card-label"}, label),
    h("span", {class: "card-value"}, value));
}

/** Spans in tree order with their depth; orphans (parent not kept) and cycles become roots. */
function ordered(spans, byId) {
  const children = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parent_id && byId.has(s.parent_id) && s.parent_id !== s.span_id) {
      if (!children.has(s.parent_id)) children.set(s.parent_id, []);
      children.get(s.parent_id).push(s);
    } else {
      roots.push(s);
    }
  }
  const out = [];
  const seen = new Set();
  const walk = (s, depth) => {
    if (seen.has(s.span_id)) return;
    seen.add(s.span_id);
    out.push({span: s, depth});
    for (const kid of (children.get(s.span_id) || []).sort((a, b) => a.start_ns - b.start_ns)) walk(kid, depth + 1);
  };
  roots.sort((a, b) => a.start_ns - b.start_ns).forEach((s) => walk(s, 0));
  for (const s of spans) if (!seen.has(s.span_id)) walk(s, 0);
  return out;
}

function kv(pairs) {
  const rows = pairs.filter(([, v]) => v !== null && v !== undefined && v !== "");
  return h("dl", {class: "kv"}, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function mapTable(map, emptyText) {
  const entries = Object.entries(map || {});
  if (!entries.length) return h("p", {class: "muted"}, emptyText);
  return h("dl", {class: "kv attrs"}, entries.map(([k, v]) => [h("dt", {}, k), h("dd", {}, h("span", {class: "value"}, v))]));
}

function showSpan(detail, s) {
  const genai = Boolean(s.operation);
  const tok = s.tokens;
  const cost = s.cost;
  clear(detail).append(
    h("h2", {}, s.name || "(unnamed)"),
    kv([["Service", s.service], ["Span id", s.span_id], ["Parent", s.parent_id], ["Kind", s.kind],
      ["Start", when(s.start)], ["Duration", ms(s.duration_ms)],
      ["Status", s.error ? h("span", {class: "badge bad"}, s.status || "error") : (s.status || "Unset")],
      ["Status message", s.status_message], ["Error type", s.error_type],
      ["Stored", s.kept ? null : "only as a GenAI call (the full span was sampled out)"],
      ["Same call as", s.duplicate_of]]),
    genai ? h("section", {class: "genai"},
      h("h3", {}, "GenAI call"),
      kv([["Operation", s.operation], ["Provider", s.provider], ["Model", s.model], ["Tool", s.tool],
        ["Conversation", s.conversation_id],
        ["Time to first token", s.ttft_ms === null ? null : ms(s.ttft_ms)],
        ["Finish reasons", (s.finish_reasons || []).join(", ")]]),
      tok.input !== null || tok.output !== null ? h("div", {class: "table-wrap"}, h("table", {class: "tokens"},
        h("thead", {}, h("tr", {}, h("th", {}, "Tokens"), h("th", {class: "num"}, "Count"),
          h("th", {class: "num"}, "Cost"))),
        h("tbody", {},
          trow("Uncached input", tok.uncached_input, cost.input, "uncached"),
          trow("Cached input", tok.cached_input, cost.cached_input, "cached"),
          trow("Cache writes", tok.cache_write, cost.cache_write, "cache-write"),
          trow("Output", tok.output, cost.output, "output"),
          trow("of which reasoning", tok.reasoning, null, "reasoning"),
          h("tr", {class: "total", "data-kind": "total"}, h("th", {}, "Total"), h("td", {class: "num"}, ""),
            h("td", {class: "num"}, cost.total === null ? "no price" : usd(cost.total)))))) : null) : null,
    s.messages.length ? h("section", {class: "conversation"}, h("h3", {}, "Conversation"),
      s.messages.map(message)) : null,
    h("h3", {}, "Attributes"), mapTable(s.attributes, s.kept ? "No attributes." : "Not stored for this call."),
    h("h3", {}, "Events"),
    s.events.length ? h("ol", {class: "events"}, s.events.map((e) => h("li", {},
      h("strong", {}, e.name), " ", h("span", {class: "muted"}, when(e.time.slice(0, 23))), mapTable(e.attributes, ""))))
      : h("p", {class: "muted"}, "No events."),
    h("h3", {}, "Links"),
    s.links.length ? h("ul", {class: "links"}, s.links.map((l) => h("li", {},
      h("a", {href: "/ui/trace/" + encodeURIComponent(l.trace_id)}, l.trace_id), " span ", l.span_id,
      mapTable(l.attributes, "")))) : h("p", {class: "muted"}, "No links."),
    Object.keys(s.resource).length ? [h("h3", {}, "Resource"), mapTable(s.resource, "")] : null);
}

function trow(label, count, cost, kind) {
  if (count === null || count === undefined) return null;
  return h("tr", {"data-kind": kind}, h("th", {}, label), h("td", {class: "num"}, int(count)),
    h("td", {class: "num"}, cost === null || cost === undefined ? "" : usd(cost)));
}

function message(m) {
  return h("div", {class: "msg role-" + (m.role || "unknown").replace(/[^a-z_]/gi, "")},
    h("div", {class: "msg-head"}, h("span", {class: "role"}, m.role || "(no role)"),
      m.finish_reason ? h("span", {class: "muted"}, "finish: " + m.finish_reason) : null),
    m.parts.map((p) => {
      if (p.type === "tool_call") {
        return h("div", {class: "part tool-call"}, h("span", {class: "part-label"}, "tool call ",
          h("strong", {}, p.name), p.id ? h("span", {class: "muted"}, " " + p.id) : null),
        h("pre", {}, p.arguments || ""));
      }
      if (p.type === "tool_call_response") {
        return h("div", {class: "part tool-result"}, h("span", {class: "part-label"}, "tool result",
          p.id ? h("span", {class: "muted"}, " " + p.id) : null), h("pre", {}, p.response || ""));
      }
      if (p.type === "archived") {
        return h("div", {class: "part archived muted"}, h("span", {class: "part-label"}, p.content || "archived"));
      }
      return h("div", {class: "part text"}, h("pre", {}, p.content || ""));
    }));
}
