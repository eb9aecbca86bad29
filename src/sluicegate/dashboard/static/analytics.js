// Analytics: two calls per view — the time series over the range, and one bucket per group.
import { api, query } from "./api.js";
import { groupBars, timeChart } from "./charts.js";
import { append, clear, fmt, h } from "./dom.js";

const RANGES = { "1h": [3600e3, "2m"], "24h": [86400e3, "1h"], "7d": [7 * 86400e3, "6h"], "30d": [30 * 86400e3, "1d"] };
const GROUPS = { provider: "Provider", provider_slug: "@slug", model: "Model", user: "User", api_key_id: "API key", workspace_id: "Workspace" };

export function analyticsPage(root) {
  const form = h("form", { class: "filters card", id: "analytics-filters" },
    h("label", { class: "field" }, "Range",
      h("select", { name: "range" }, Object.keys(RANGES).map((k) => h("option", { value: k, selected: k === "24h" }, k)))),
    h("label", { class: "field" }, "Group by",
      h("select", { name: "group" }, Object.entries(GROUPS).map(([k, v]) => h("option", { value: k }, v)))),
    h("div", { class: "filter-actions" }, h("button", { type: "submit", class: "primary" }, "Show")));
  const totals = h("div", { class: "totals", id: "totals" });
  const charts = h("div", { class: "chart-grid", id: "charts" });
  const groups = h("div", { class: "chart-grid", id: "group-charts" });
  const status = h("p", { class: "muted" });
  append(clear(root), h("div", { class: "page-head" }, h("h1", {}, "Analytics")), form, status, totals, charts, groups);

  let sequence = 0;
  async function load() {
    const mine = ++sequence;
    const data = new FormData(form);
    const [span, interval] = RANGES[data.get("range")];
    const group = data.get("group");
    const now = Date.now();
    const range = { from: new Date(now - span).toISOString(), to: new Date(now).toISOString() };
    status.textContent = "Loading…";
    try {
      const [series, grouped] = await Promise.all([
        api("GET", `/analytics${query({ ...range, interval })}`),
        api("GET", `/analytics${query({ ...range, interval: "all", group_by: group })}`),
      ]);
      if (mine !== sequence) return;  // a newer choice was made meanwhile
      status.textContent = "";
      showTotals(totals, series.totals);
      showSeries(charts, series, span);
      showGroups(groups, grouped.data, GROUPS[group]);
    } catch (e) { status.textContent = e.message; }
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  form.addEventListener("change", load);
  load();
}

function showTotals(root, t) {
  const card = (label, value, note) => h("div", { class: "card stat" }, h("span", { class: "stat-label" }, label),
    h("span", { class: "stat-value" }, value), note ? h("span", { class: "muted" }, note) : null);
  append(clear(root),
    card("Requests", fmt.int(t.requests)),
    card("Errors", fmt.int(t.errors), `${(t.error_rate * 100).toFixed(1)} %`),
    card("Latency p50", fmt.ms(t.latency_ms.p50), `p95 ${fmt.ms(t.latency_ms.p95)} · p99 ${fmt.ms(t.latency_ms.p99)}`),
    card("Tokens", fmt.compact(t.total_tokens), `${fmt.compact(t.prompt_tokens)} in · ${fmt.compact(t.completion_tokens)} out`),
    card("Cost", fmt.cost(t.cost)));
}

function showSeries(root, result, span) {
  // Every bucket of the range, empty ones included, so time reads evenly from left to right.
  const step = result.interval_ms, start = Math.floor((Date.parse(result.from)) / step) * step;
  const byBucket = new Map(result.data.map((d) => [d.bucket_ms, d]));
  const xs = [];
  for (let x = start; x < Date.parse(result.to); x += step) xs.push(x);
  const pick = (f) => xs.map((x) => (byBucket.has(x) ? f(byBucket.get(x)) : null));
  const zero = (f) => pick(f).map((v) => v ?? 0);
  append(clear(root),
    timeChart({ title: "Requests", kind: "bars", xs, series: [
      { name: "ok", values: zero((d) => d.requests - d.errors), colour: 0 },
      { name: "errors", values: zero((d) => d.errors), colour: 3 }] }),
    timeChart({ title: "Latency", xs, yFormat: fmt.ms, series: [
      { name: "p50", values: pick((d) => d.latency_ms.p50), colour: 0 },
      { name: "p95", values: pick((d) => d.latency_ms.p95), colour: 1 },
      { name: "p99", values: pick((d) => d.latency_ms.p99), colour: 3 }] }),
    timeChart({ title: "Tokens", kind: "bars", xs, series: [
      { name: "prompt", values: zero((d) => d.prompt_tokens), colour: 2 },
      { name: "completion", values: zero((d) => d.completion_tokens), colour: 4 }] }),
    timeChart({ title: "Cost (USD)", xs, yFormat: fmt.cost, series: [
      { name: "cost", values: zero((d) => d.cost), colour: 5 }] }));
}

function showGroups(root, data, label) {
  const rows = data.map((d) => ({ ...d, label: d.group ?? "(none)" })).sort((a, b) => b.requests - a.requests).slice(0, 12);
  const table = h("div", { class: "card table-card wide" }, h("table", { class: "grid-table" },
    h("thead", {}, h("tr", {}, [label, "Requests", "Errors", "p50", "p95", "p99", "Tokens", "Cost"].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, h("td", {}, r.label), h("td", { class: "num" }, fmt.int(r.requests)),
      h("td", { class: "num" }, fmt.int(r.errors)), h("td", { class: "num" }, fmt.ms(r.latency_ms.p50)),
      h("td", { class: "num" }, fmt.ms(r.latency_ms.p95)), h("td", { class: "num" }, fmt.ms(r.latency_ms.p99)),
      h("td", { class: "num" }, fmt.compact(r.total_tokens)), h("td", { class: "num" }, fmt.cost(r.cost)))))));
  append(clear(root),
    groupBars({ title: `Requests by ${label.toLowerCase()}`, rows: rows.map((r) => ({ label: r.label, value: r.requests })) }),
    groupBars({ title: `p95 latency by ${label.toLowerCase()}`, yFormat: fmt.ms,
                rows: rows.map((r) => ({ label: r.label, value: r.latency_ms.p95 ?? 0 })) }),
    table);
}
