// The Usage tab: cost over time stacked by model, service or tenant; tokens by kind; calls and error rate;
// latency and time to first token per model and per tool. The tables are `spanhouse usage`'s rows.
import {h, clear, int, usd, ms, table, emptyState} from "./dom.js";
import {api} from "./api.js";
import {filterBar, currentParams, apiParams} from "./filters.js";

const FILTERS = ["tenant", "service", "model", "tool", "by", "per"];
const PALETTE = ["#3b6fd8", "#e8833a", "#2e9e6a", "#c0457a", "#8a63d2", "#c9a227", "#2aa4b8", "#d64545",
  "#6b8e23", "#8c6d5a"];
let charts = [];

export async function renderUsage(ctx) {
  const results = h("section", {class: "results", "aria-live": "polite"}, h("p", {class: "loading"}, "Loading usage…"));
  const load = (params) => show(ctx, results, params);
  clear(ctx.main).append(h("h1", {class: "visually-hidden"}, "Usage"), filterBar(ctx, FILTERS, load), results);
  await load(currentParams());
  let timer = null;
  const redraw = () => { clearTimeout(timer); timer = setTimeout(() => load(currentParams()), 200); };
  window.addEventListener("resize", redraw);
  window.addEventListener("themechange", redraw);
}

let generation = 0;

async function show(ctx, results, params) {
  const mine = ++generation;
  results.classList.add("busy");
  let doc;
  try {
    doc = await api("usage", apiParams(params, FILTERS));
  } catch (error) {
    if (mine === generation) {
      results.classList.remove("busy");
      clear(results).appendChild(h("div", {class: "empty error", role: "alert"}, h("p", {}, error.message)));
    }
    return;
  }
  if (mine !== generation) return;
  results.classList.remove("busy");
  charts.forEach((c) => c.destroy());
  charts = [];
  clear(results);
  if (!doc.groups.length && !doc.tools.length) {
    results.appendChild(emptyState(ctx.who, "No GenAI calls in this time range",
      "Cost, tokens and latency show here once calls arrive."));
    return;
  }
  const byLabel = {model: "Model", service: "Service", tenant: "Tenant"}[doc.by];
  const sum = (key) => doc.groups.reduce((a, r) => a + (r[key] || 0), 0);
  const calls = sum("calls");
  results.append(
    h("div", {class: "cards", id: "usage-totals"},
      h("div", {class: "card", "data-total": "cost"}, h("span", {class: "card-label"}, "Cost"),
        h("span", {class: "card-value"}, usd(sum("cost_usd")))),
      h("div", {class: "card", "data-total": "calls"}, h("span", {class: "card-label"}, "LLM calls"),
        h("span", {class: "card-value"}, int(calls))),
      h("div", {class: "card", "data-total": "errors"}, h("span", {class: "card-label"}, "Error rate"),
        h("span", {class: "card-value"}, calls ? (sum("errors") / calls * 100).toFixed(1) + " %" : "")),
      h("div", {class: "card", "data-total": "tokens"}, h("span", {class: "card-label"}, "Tokens in / out"),
        h("span", {class: "card-value"}, int(sum("input_tokens")) + " / " + int(sum("output_tokens"))))));
  const grid = h("div", {class: "charts"});
  results.appendChild(grid);
  if (window.uPlot && doc.series.length) drawCharts(grid, doc, byLabel);
  const latency = (r) => [ms(r.ms[0]), ms(r.ms[1]), ms(r.ms[2])];
  results.append(
    h("h2", {}, "By " + byLabel.toLowerCase()),
    table([
      {label: byLabel, key: "key", cell: (r) => r.key},
      {label: "Calls", key: "calls", num: true, cell: (r) => int(r.calls)},
      {label: "Errors", key: "errors", num: true, cell: (r) => int(r.errors)},
      {label: "Input", key: "input", num: true, cell: (r) => int(r.input_tokens)},
      {label: "Cached", key: "cached", num: true, cell: (r) => int(r.cached_tokens)},
      {label: "Output", key: "output", num: true, cell: (r) => int(r.output_tokens)},
      {label: "Cost", key: "cost", num: true, cell: (r) => r.cost_usd === null ? "no price" : usd(r.cost_usd)},
      {label: "p50", key: "p50", num: true, cell: (r) => latency(r)[0]},
      {label: "p95", key: "p95", num: true, cell: (r) => latency(r)[1]},
      {label: "p99", key: "p99", num: true, cell: (r) => latency(r)[2]},
      {label: "TTFT p50", key: "ttft50", num: true, cell: (r) => ms(r.ttft_ms[0])},
      {label: "TTFT p95", key: "ttft95", num: true, cell: (r) => ms(r.ttft_ms[1])},
    ], doc.groups, (r) => ({"data-key": r.key, class: "usage-row"})));
  if (doc.models) {
    results.append(h("h2", {}, "Latency by model"), table([
      {label: "Model", key: "key", cell: (r) => r.key},
      {label: "Calls", key: "calls", num: true, cell: (r) => int(r.calls)},
      {label: "p50", key: "p50", num: true, cell: (r) => ms(r.ms[0])},
      {label: "p95", key: "p95", num: true, cell: (r) => ms(r.ms[1])},
      {label: "p99", key: "p99", num: true, cell: (r) => ms(r.ms[2])},
      {label: "TTFT p50", key: "ttft50", num: true, cell: (r) => ms(r.ttft_ms[0])},
      {label: "TTFT p95", key: "ttft95", num: true, cell: (r) => ms(r.ttft_ms[1])},
      {label: "TTFT p99", key: "ttft99", num: true, cell: (r) => ms(r.ttft_ms[2])},
    ], doc.models));
  }
  results.append(h("h2", {}, "Tools"), doc.tools.length ? table([
    {label: "Tool", key: "key", cell: (r) => r.key},
    {label: "Calls", key: "calls", num: true, cell: (r) => int(r.calls)},
    {label: "Errors", key: "errors", num: true, cell: (r) => int(r.errors)},
    {label: "p50", key: "p50", num: true, cell: (r) => ms(r.ms[0])},
    {label: "p95", key: "p95", num: true, cell: (r) => ms(r.ms[1])},
    {label: "p99", key: "p99", num: true, cell: (r) => ms(r.ms[2])},
  ], doc.tools, (r) => ({"data-key": r.key, class: "tool-row"})) : h("p", {class: "muted"}, "No tool calls."));
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function drawCharts(grid, doc, byLabel) {
  // Every box first, so each chart is sized to its own cell of the final grid.
  for (const [id, title] of [["cost-chart", "Cost per " + bucketName(doc.bucket_s) + " by " + byLabel.toLowerCase()],
    ["tokens-chart", "Tokens by kind"], ["calls-chart", "Calls and error rate"]]) {
    grid.appendChild(h("figure", {class: "chart", id}, h("figcaption", {}, title)));
  }
  const times = [...new Set(doc.series.map((p) => p.t))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const keys = [...new Set(doc.series.map((p) => p.key))];
  const per = (field) => {
    const out = new Map(keys.map((k) => [k, times.map(() => 0)]));
    for (const p of doc.series) out.get(p.key)[index.get(p.t)] += p[field];
    return out;
  };
  const total = (field) => {
    const out = times.map(() => 0);
    for (const p of doc.series) out[index.get(p.t)] += p[field];
    return out;
  };
  const cost = per("cost_usd");
  // Stacked bars: each series is drawn at its running total; the legend shows the bucket's own value.
  const raw = keys.map((k) => cost.get(k));
  const stacked = [];
  let running = times.map(() => 0);
  for (const values of raw) {
    running = running.map((v, i) => v + values[i]);
    stacked.push(running);
  }
  const bars = uPlot.paths.bars({size: [0.8, 40]});
  const costChart = chart(grid, "Cost per " + bucketName(doc.bucket_s) + " by " + byLabel.toLowerCase(), "cost-chart",
    [times, ...stacked.slice().reverse()],
    keys.slice().reverse().map((k, i) => {
      const ki = keys.length - 1 - i;
      return {label: k, fill: PALETTE[ki % PALETTE.length], stroke: PALETTE[ki % PALETTE.length], paths: bars,
        value: (u, v, si, idx) => idx === null || idx === undefined ? "" : usd(raw[ki][idx])};
    }), (v) => usd(v));
  const calls = total("calls");
  const errors = total("errors");
  // Each kind once: input = uncached + cached + cache writes; reasoning is the part of output spent thinking.
  chart(grid, "Tokens by kind", "tokens-chart", [times, total("uncached_input_tokens"), total("cached_tokens"),
    total("cache_write_tokens"), total("output_tokens"), total("reasoning_tokens")], [
    {label: "Uncached input", stroke: PALETTE[0], width: 2, value: (u, v) => int(v)},
    {label: "Cached input", stroke: PALETTE[2], width: 2, value: (u, v) => int(v)},
    {label: "Cache writes", stroke: PALETTE[3], width: 2, value: (u, v) => int(v)},
    {label: "Output", stroke: PALETTE[1], width: 2, value: (u, v) => int(v)},
    {label: "Reasoning (in output)", stroke: PALETTE[4], width: 2, value: (u, v) => int(v)},
  ], (v) => int(v));
  chart(grid, "Calls and error rate", "calls-chart", [times, calls, calls.map((c, i) => c ? errors[i] / c * 100 : 0)], [
    {label: "Calls", stroke: PALETTE[0], fill: PALETTE[0] + "55", paths: bars, value: (u, v) => int(v)},
    {label: "Error rate %", stroke: PALETTE[7], width: 2, scale: "pct", value: (u, v) => v === null ? "" : v.toFixed(1) + " %"},
  ], (v) => int(v), true);
  return costChart;
}

function bucketName(seconds) {
  if (seconds % 86400 === 0) return seconds === 86400 ? "day" : seconds / 86400 + " days";
  if (seconds % 3600 === 0) return seconds === 3600 ? "hour" : seconds / 3600 + " h";
  return seconds / 60 + " min";
}

function chart(grid, title, id, data, series, format, percentAxis) {
  const box = grid.querySelector("#" + id);
  const width = Math.max(280, box.clientWidth - 16);
  const text = cssVar("--text") || "#222";
  const line = cssVar("--line") || "#ddd";
  const axis = {stroke: text, grid: {stroke: line, width: 1}, ticks: {stroke: line, width: 1}};
  const axes = [axis, {...axis, size: 64, values: (u, vals) => vals.map(format)}];
  if (percentAxis) axes.push({...axis, scale: "pct", side: 1, grid: {show: false}, values: (u, vals) => vals.map((v) => v + "%")});
  const plot = new uPlot({
    width, height: 220, series: [{}, ...series], axes,
    scales: {x: {time: true}, ...(percentAxis ? {pct: {range: [0, 100]}} : {})},
    cursor: {points: {show: false}}, legend: {live: true},
  }, data, box);
  charts.push(plot);
  return plot;
}
