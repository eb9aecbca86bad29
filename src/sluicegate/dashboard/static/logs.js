// Logs: filters → one list call (attempts included), a row click → one record call; live tail polls the
// same list call for rows that started since the newest shown, less TAIL_LATE_MS: a row is written when its
// request ends, under the time it started, so a stream that began before a quick request shown already comes
// in later (under an older time), and only this look back finds it.
import { api, query } from "./api.js";
import { append, clear, fmt, h, pretty, statusPill } from "./dom.js";

const RANGES = { "15m": 900e3, "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3, all: null };
const TAIL_MS = 2000;
const TAIL_LATE_MS = 10 * 60e3;  // requests that run longer than this are shown by a reload, not by the tail
const TAIL_PAGES = 3;  // at most this many pages of 100 a poll (a busy gateway: the newest 300 of the window)

export function logsPage(root, session) {
  const oneWorkspace = Boolean(session?.principal.workspace);  // a workspace key sees its own only
  const state = { rows: [], cursor: null, timer: null, sequence: 0 };
  const field = (name, label, placeholder) => h("label", { class: "field" }, label,
    h("input", { name, placeholder, spellcheck: "false", autocomplete: "off" }));
  const form = h("form", { class: "filters card", id: "log-filters" },
    h("label", { class: "field" }, "Time",
      h("select", { name: "range" }, Object.keys(RANGES).map((k) => h("option", { value: k, selected: k === "24h" }, k)))),
    h("label", { class: "field" }, "Status",
      h("select", { name: "status" }, ["", "success", "error", "2xx", "4xx", "5xx"].map((v) => h("option", { value: v }, v || "any")))),
    field("provider", "Provider / @slug", "openai or @my-llm"),
    field("model", "Model", "gpt-4o-mini"),
    field("user", "User", "_user"),
    field("metadata", "Metadata", "team=search"),
    field("trace_id", "Trace id", ""),
    field("api_key_id", "API key id", ""),
    oneWorkspace ? null : field("workspace_id", "Workspace id", "ws-…"),
    h("div", { class: "filter-actions" },
      h("button", { type: "submit", class: "primary", id: "apply-filters" }, "Apply"),
      h("label", { class: "toggle" }, h("input", { type: "checkbox", id: "live-tail" }), h("span", {}, "Live tail"))));
  const status = h("p", { class: "muted", id: "log-status" });
  const body = h("tbody", { id: "log-rows" });
  const table = h("table", { class: "grid-table logs" },
    h("thead", {}, h("tr", {}, ["Time", "Status", "Provider", "Model", "Latency", "Tokens", "Cost", "", "User"]
      .map((t) => h("th", {}, t)))), body);
  const more = h("button", { class: "secondary", id: "load-more", hidden: true, onclick: () => load(true) }, "Load more");
  const panel = h("aside", { class: "panel", id: "log-panel", hidden: true });
  append(clear(root), h("div", { class: "page-head" }, h("h1", {}, "Logs")), form, status,
    h("div", { class: "card table-card" }, table), more, panel);

  function filters() {
    const data = new FormData(form), params = {};
    const span = RANGES[data.get("range")];
    if (span) params.from = new Date(Date.now() - span).toISOString();
    if (data.get("status")) params.status = data.get("status");
    const provider = data.get("provider").trim();
    if (provider.startsWith("@")) params.provider_slug = provider;  // stored with its "@"
    else if (provider) params.provider = provider;
    for (const name of ["model", "user", "trace_id", "api_key_id", "workspace_id"]) {
      const value = (data.get(name) || "").trim();
      if (value) params[name] = value;
    }
    const meta = data.get("metadata").trim();
    if (meta) {
      const [key, ...rest] = meta.split("=");
      // A key without a value was dropped (the empty value is not sent): the whole list came back, unfiltered.
      if (!rest.length || !rest.join("=").trim()) throw new Error("Metadata: write it as key=value");
      params[`metadata.${key.trim()}`] = rest.join("=").trim();
    }
    return params;
  }

  async function load(next = false) {
    let applied;
    try { applied = next && state.applied ? state.applied : filters(); } catch (e) { status.textContent = e.message; return; }
    state.applied = applied;  // what the live tail polls: the filters of the list shown, not the form's unapplied edits
    const params = { ...applied, limit: 50 };
    if (next && state.cursor) params.cursor = state.cursor;
    status.textContent = "Loading…";
    const mine = ++state.sequence;
    try {
      const page = await api("GET", `/logs${query(params)}`);
      if (mine !== state.sequence) return;  // a newer search was started meanwhile: its answer counts
      state.rows = next ? state.rows.concat(page.data) : page.data;
      state.cursor = page.next_cursor;
      render();
      status.textContent = state.rows.length ? `${state.rows.length} requests shown` : "No requests match these filters.";
    } catch (e) { status.textContent = e.message; }
  }

  async function tail() {
    const newest = state.rows[0];
    if (!state.applied) return;
    const params = { ...state.applied, limit: 100 };
    if (newest) {  // never before the filters' own range
      const since = newest.created_ms - TAIL_LATE_MS;
      if (!params.from || since > Date.parse(params.from)) params.from = new Date(since).toISOString();
    }
    const mine = state.sequence;
    const known = new Set(state.rows.map((r) => r.id));
    const fresh = [];
    try {
      for (let pages = 0; pages < TAIL_PAGES; pages++) {
        const page = await api("GET", `/logs${query(params)}`);
        if (mine !== state.sequence) return;  // the filters changed while this poll was out
        fresh.push(...page.data.filter((r) => !known.has(r.id)));
        if (!page.next_cursor) break;
        params.cursor = page.next_cursor;
      }
    } catch (e) { status.textContent = e.message; }
    if (!fresh.length) return;
    // In the list's order (newest start first, then id, as the API pages): a late row goes where it started.
    state.rows = state.rows.concat(fresh).sort((a, b) => b.created_ms - a.created_ms || (a.id < b.id ? 1 : -1));
    render(fresh.map((r) => r.id));
    status.textContent = `${state.rows.length} requests shown`;
  }

  function render(fresh = []) {
    clear(body);
    for (const r of state.rows) body.append(row(r, fresh.includes(r.id)));
    more.hidden = !state.cursor;
  }

  function row(r, isNew) {
    const tr = h("tr", { class: isNew ? "fresh" : null, "data-id": r.id, tabindex: "0",
                         onclick: () => open(r.id), onkeydown: (e) => e.key === "Enter" && open(r.id) },
      h("td", { class: "nowrap" }, fmt.time(r.created_at)),
      h("td", {}, statusPill(r.status, r.error)),
      h("td", {}, r.provider_slug || r.provider || "–"),
      h("td", { class: "mono" }, r.model || "–"),
      h("td", { class: "num" }, fmt.ms(r.latency_ms)),
      h("td", { class: "num" }, fmt.int(r.usage.total_tokens)),
      h("td", { class: "num" }, fmt.cost(r.cost)),
      h("td", {}, markers(r)),
      h("td", {}, r.user || ""));
    return tr;
  }

  async function open(id) {
    panel.hidden = false;
    append(clear(panel), h("p", { class: "muted" }, "Loading…"));
    try { showRecord(panel, await api("GET", `/logs/${encodeURIComponent(id)}`)); }
    catch (e) { append(clear(panel), h("p", { class: "error-text" }, e.message)); }
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  form.querySelector("#live-tail").addEventListener("change", (e) => {
    clearInterval(state.timer);
    state.timer = e.target.checked ? setInterval(tail, TAIL_MS) : null;
  });
  load();
  return () => clearInterval(state.timer);
}

export function markers(r) {
  const paths = new Set((r.attempts || []).map((a) => a.target_path));
  return h("span", { class: "markers" },
    r.retries ? h("span", { class: "tag tag-retry", title: "retries" }, `↻ ${r.retries}`) : null,
    paths.size > 1 ? h("span", { class: "tag tag-fallback", title: "answered by a fallback target" }, "fallback") : null,
    /^(HIT|SEMANTIC HIT|MISS|REFRESH)$/i.test(r.cache_status || "")
      ? h("span", { class: "tag tag-cache" }, `cache ${r.cache_status.toLowerCase()}`) : null,
    r.stream ? h("span", { class: "tag" }, "stream") : null);
}

function showRecord(panel, r) {
  const facts = [["Trace id", r.trace_id], ["Route", `${r.method} ${r.route}`], ["Status", r.status],
    ["Latency", fmt.ms(r.latency_ms)], ["Time to first byte", fmt.ms(r.ttfb_ms)],
    ["Provider", r.provider_slug ? `${r.provider_slug} (${r.provider})` : r.provider], ["Model", r.model],
    ["Answered by", r.model_answered], ["Tokens", `${fmt.int(r.usage.prompt_tokens)} in · ${fmt.int(r.usage.completion_tokens)} out`],
    ["Cost", fmt.cost(r.cost)], ["User", r.user], ["Metadata", JSON.stringify(r.metadata)],
    ["Workspace", r.workspace_id], ["API key id", r.api_key_id]];
  append(clear(panel),
    h("div", { class: "panel-head" }, h("h2", {}, "Request"), statusPill(r.status, r.error),
      h("button", { class: "link-button", id: "close-panel", onclick: () => { panel.hidden = true; } }, "Close ✕")),
    r.error ? h("p", { class: "error-text" }, `${r.error.type}: ${r.error.message}`) : null,
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "–")])),
    h("h3", {}, `Attempts (${r.attempts.length})`),
    h("table", { class: "grid-table attempts" },
      h("thead", {}, h("tr", {}, ["#", "Target", "Host", "Status", "Latency", "Error"].map((t) => h("th", {}, t)))),
      h("tbody", {}, r.attempts.map((a) => h("tr", {},
        h("td", {}, a.retry ? `${a.position} (retry ${a.retry})` : a.position), h("td", {}, a.target_path || "–"),
        h("td", { class: "mono" }, a.host || "–"), h("td", {}, a.status ?? "–"), h("td", {}, fmt.ms(a.latency_ms)),
        h("td", {}, a.error || ""))))),
    h("h3", {}, "Request body"), h("pre", { class: "body", id: "request-body" }, pretty(r.request_body)),
    h("h3", {}, "Response body"), h("pre", { class: "body", id: "response-body" }, pretty(r.response_body)));
}
