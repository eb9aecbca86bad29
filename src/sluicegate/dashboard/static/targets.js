// Targets: what this gateway process knows of each least-busy target (in flight, the queue and KV cache its
// server reports, health), one call every few seconds while the tab is visible.
import { api } from "./api.js";
import { append, clear, fmt, h } from "./dom.js";

const REFRESH_MS = 3000;

export function targetsPage(root) {
  const status = h("p", { class: "muted", id: "targets-status" }, "Loading…");
  const rows = h("tbody", { id: "target-rows" });
  const table = h("div", { class: "card table-card wide" }, h("table", { class: "grid-table", id: "targets-table" },
    h("thead", {}, h("tr", {}, ["Target", "Model", "In flight", "Server queue", "KV cache", "Health", "Requests"]
      .map((t) => h("th", {}, t)))),
    rows));
  append(clear(root), h("div", { class: "page-head" }, h("h1", {}, "Targets")),
    h("p", { class: "muted" }, "Least-busy targets as this gateway process sees them; refreshed every few seconds."),
    status, table);

  let sequence = 0;
  async function load() {
    if (document.hidden) return;
    const mine = ++sequence;
    try {
      const body = await api("GET", "/targets");
      if (mine !== sequence) return;
      append(clear(rows), body.data.map(row));
      status.textContent = body.data.length ? `${body.data.length} targets · updated ${fmt.time(new Date().toISOString())}`
        : "No least-busy target has been used since this process started.";
    } catch (e) { if (mine === sequence) status.textContent = e.message; }
  }

  const timer = setInterval(load, REFRESH_MS);
  document.addEventListener("visibilitychange", load);
  load();
  return () => { clearInterval(timer); document.removeEventListener("visibilitychange", load); };
}

function row(t) {
  const cache = t.cache_usage === null ? "–" : `${Math.round(t.cache_usage * 100)} %`;
  const queue = t.server_queue === null ? "–" : fmt.int(t.server_queue);
  return h("tr", {},
    h("td", { class: "mono" }, `${t.provider || "?"} · ${t.base_url}`),
    h("td", { class: "mono" }, t.model || "–"),
    h("td", { class: "num" }, fmt.int(t.in_flight)),
    h("td", { class: "num" }, queue),
    h("td", { class: "num" }, cache),
    h("td", { class: "health" }, h("span", { class: `pill pill-${t.healthy ? "ok" : "bad"}` }, t.healthy ? "healthy" : "unhealthy")),
    h("td", { class: "num" }, fmt.int(t.requests)));
}
