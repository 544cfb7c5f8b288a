// Building the page from data: every stored value is attacker text, so it only ever becomes a text node or
// an attribute set through the DOM, never HTML.

/** h("a", {href: "/ui/", class: "x", onclick: fn}, "text", child, [more]) -> Element */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

const numberFormat = new Intl.NumberFormat("en-US");

export function int(n) {
  return n === null || n === undefined ? "" : numberFormat.format(n);
}

export function usd(n) {
  if (n === null || n === undefined) return "";
  if (n === 0) return "$0";
  // Four significant digits below $100 (LLM calls cost fractions of a cent), cents above.
  if (Math.abs(n) < 100) return "$" + String(Number(Number(n).toPrecision(4)));
  return "$" + Number(n).toFixed(2);
}

export function ms(n) {
  if (n === null || n === undefined) return "";
  if (n >= 60000) return (n / 60000).toFixed(1) + " min";
  if (n >= 1000) return (n / 1000).toFixed(2) + " s";
  return (n >= 10 ? n.toFixed(0) : n.toFixed(1)) + " ms";
}

/** '2026-12-04 10:00:00.123' (UTC) -> local time text. */
export function when(text) {
  if (!text) return "";
  const d = new Date(text.replace(" ", "T") + (text.endsWith("Z") ? "" : "Z"));
  return isNaN(d) ? text : d.toLocaleString(undefined, {month: "short", day: "numeric", hour: "2-digit",
    minute: "2-digit", second: "2-digit"});
}

export function table(columns, rows, rowAttrs) {
  const head = h("tr", {}, columns.map((c) => h("th", {class: c.num ? "num" : "", scope: "col",
    "data-col": c.key || c.label}, c.label)));
  const body = rows.map((row) => h("tr", rowAttrs ? rowAttrs(row) : {},
    columns.map((c) => h("td", {class: c.num ? "num" : (c.class || ""), "data-col": c.key || c.label},
      c.cell(row)))));
  return h("div", {class: "table-wrap"}, h("table", {}, h("thead", {}, head), h("tbody", {}, body)));
}

/** An empty list: what it means, and how to send the first span (the collector's own OTLP endpoints). */
export function emptyState(who, title, hint) {
  const grpc = who.otlp_grpc || "127.0.0.1:4317";
  const command = "OTEL_EXPORTER_OTLP_ENDPOINT=http://" + grpc + " OTEL_SERVICE_NAME=my-app "
    + "opentelemetry-instrument python app.py";
  return h("div", {class: "empty"},
    h("h2", {}, title),
    hint ? h("p", {}, hint) : null,
    h("p", {}, "Send spans to this collector over OTLP: gRPC at ", h("code", {}, grpc),
      who.otlp_http ? [", HTTP at ", h("code", {}, who.otlp_http)] : null, ". For a Python app:"),
    h("pre", {class: "command"}, command),
    h("p", {class: "muted"}, "Or try it with synthetic traffic: ", h("code", {}, "spanhouse demo"), "."));
}
