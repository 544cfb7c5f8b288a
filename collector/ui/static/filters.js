// The filter bar every list page shares. Filters live in the URL's query string, so a view can be shared;
// the same names are the API's parameters.
import {h} from "./dom.js";
import {api} from "./api.js";

export const RANGES = [["1h", "Last hour"], ["24h", "Last 24 h"], ["7d", "Last 7 days"], ["custom", "Custom"]];

export function currentParams() {
  return Object.fromEntries(new URLSearchParams(location.search).entries());
}

/** The URL's filters with `changes` applied ('' removes one); replaces the URL; returns the new filters. */
export function updateParams(changes) {
  const params = currentParams();
  for (const [key, value] of Object.entries(changes)) {
    if (value === "" || value === null || value === undefined) delete params[key];
    else params[key] = String(value);
  }
  const query = new URLSearchParams(params).toString();
  history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
  return params;
}

function toLocalInput(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * The filter form. `fields` picks the filters this page offers; `onChange(params)` runs after each change.
 */
export function filterBar(ctx, fields, onChange) {
  const params = currentParams();
  const since = params.since || "1h";
  const custom = !RANGES.some(([value]) => value === since && value !== "custom");
  const lists = {};
  const change = (changes) => onChange(updateParams({...changes, page: ""}));

  const range = h("select", {name: "range", "aria-label": "Time range"},
    RANGES.map(([value, label]) => h("option", {value, selected: (custom ? "custom" : since) === value}, label)));
  const from = h("input", {type: "datetime-local", name: "since", "aria-label": "From",
    value: custom ? toLocalInput(since) : ""});
  const to = h("input", {type: "datetime-local", name: "until", "aria-label": "To",
    value: custom && params.until ? toLocalInput(params.until) : ""});
  const customBox = h("span", {class: "custom-range", hidden: !custom}, from, "–", to);
  range.addEventListener("change", () => {
    customBox.hidden = range.value !== "custom";
    if (range.value !== "custom") change({since: range.value, until: ""});
  });
  const applyCustom = () => {
    if (!from.value) return;
    change({since: new Date(from.value).toISOString(), until: to.value ? new Date(to.value).toISOString() : ""});
  };
  from.addEventListener("change", applyCustom);
  to.addEventListener("change", applyCustom);

  const items = [h("label", {class: "field"}, h("span", {}, "Time"), range, customBox)];
  const text = (name, label, listName, attrs) => {
    const input = h("input", {type: "search", name, value: params[name] || "", list: listName ? "list-" + name : null,
      placeholder: label, "aria-label": label, autocomplete: "off", ...(attrs || {})});
    let timer = null;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => change({[name]: input.value.trim()}), 350);
    });
    input.addEventListener("change", () => {
      clearTimeout(timer);
      if ((currentParams()[name] || "") !== input.value.trim()) change({[name]: input.value.trim()});
    });
    if (listName) lists[listName] = h("datalist", {id: "list-" + name});
    return h("label", {class: "field"}, h("span", {}, label), input, listName ? lists[listName] : null);
  };
  if (fields.includes("tenant") && ctx.who.admin) items.push(text("tenant", "Tenant", "tenants"));
  if (fields.includes("service")) items.push(text("service", "Service", "services"));
  if (fields.includes("model")) items.push(text("model", "Model", "models"));
  if (fields.includes("tool")) items.push(text("tool", "Tool", "tools"));
  if (fields.includes("q")) items.push(text("q", "Span name contains"));
  if (fields.includes("conversation")) items.push(text("conversation", "Conversation"));
  if (fields.includes("user")) items.push(text("user", "User (hashed id)"));
  if (fields.includes("min_cost")) {
    items.push(text("min_cost", "Cost ≥ $", null, {type: "number", min: "0", step: "any", inputmode: "decimal"}));
  }
  if (fields.includes("min_duration_ms")) {
    items.push(text("min_duration_ms", "Duration ≥ ms", null, {type: "number", min: "0", step: "any",
      inputmode: "decimal"}));
  }
  if (fields.includes("errors")) {
    const box = h("input", {type: "checkbox", name: "errors", checked: params.errors === "1"});
    box.addEventListener("change", () => change({errors: box.checked ? "1" : ""}));
    items.push(h("label", {class: "field check"}, box, h("span", {}, "Errors only")));
  }
  if (fields.includes("sort")) {
    const sort = h("select", {name: "sort", "aria-label": "Sort by"},
      [["start", "Newest"], ["cost", "Cost"], ["duration", "Duration"]].map(([value, label]) =>
        h("option", {value, selected: (params.sort || "start") === value}, label)));
    sort.addEventListener("change", () => change({sort: sort.value}));
    items.push(h("label", {class: "field"}, h("span", {}, "Sort"), sort));
  }
  if (fields.includes("by")) {
    const by = h("select", {name: "by", "aria-label": "Group by"},
      [["model", "Model"], ["service", "Service"], ["tenant", "Tenant"]].map(([value, label]) =>
        h("option", {value, selected: (params.by || "model") === value}, label)));
    by.addEventListener("change", () => change({by: by.value}));
    items.push(h("label", {class: "field"}, h("span", {}, "Group by"), by));
    const per = h("select", {name: "per", "aria-label": "Chart bucket"},
      [["auto", "Auto"], ["hour", "Hour"], ["day", "Day"]].map(([value, label]) =>
        h("option", {value, selected: (params.per || "auto") === value}, label)));
    per.addEventListener("change", () => change({per: per.value === "auto" ? "" : per.value}));
    items.push(h("label", {class: "field"}, h("span", {}, "Per"), per));
  }
  // The choices each text filter suggests: what the range holds.
  api("facets", {since: params.since || "1h", ...(params.until ? {until: params.until} : {}),
    ...(params.tenant ? {tenant: params.tenant} : {})}).then((facets) => {
    for (const [name, list] of Object.entries(lists)) {
      for (const value of facets[name] || []) list.appendChild(h("option", {value}));
    }
  }).catch(() => {});
  return h("form", {class: "filters", role: "search", onsubmit: (e) => e.preventDefault()}, items);
}

/** The API parameters of the URL's filters (only those the API reads). */
export function apiParams(params, names) {
  const out = {};
  for (const name of ["since", "until", "tenant", ...names]) if (params[name]) out[name] = params[name];
  return out;
}
