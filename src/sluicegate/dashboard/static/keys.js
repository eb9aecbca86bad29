// API keys: the keys this sign-in may see (a workspace key: its workspace's), each with its scopes, rate
// limits and budget usage; create (the secret is shown once, then forgotten), edit scopes and limits, revoke.
// A key is only ever shown masked; the new secret lives in one element until "Done" or leaving the page.
import { api, query } from "./api.js";
import { append, clear, fmt, h } from "./dom.js";

const TYPES = ["workspace", "organisation"];
const SUB_TYPES = ["service", "user"];
const UNITS = { rpm: "minute", rph: "hour", rpd: "day" };
const RESETS = ["monthly", "weekly", "daily"];

const can = (session, scope) => session.principal.scopes.includes(scope);
const keyScope = (type, sub, action) => `${type}_${sub}_api_keys.${action}`;
const canAny = (session, action) => TYPES.some((t) => SUB_TYPES.some((s) => can(session, keyScope(t, s, action))));

export function keysPage(root, session) {
  const list = h("div", { class: "card table-card", id: "keys-list" });
  const status = h("p", { class: "muted", id: "keys-status" });
  const secretBox = h("div", { id: "new-key-box" });
  const formBox = h("div", { id: "key-form-box" });
  const workspaceFilter = h("select", { id: "key-workspace", onchange: () => load() },
    h("option", { value: "" }, "All workspaces"));
  let workspaces = new Map();
  const mine = session.principal.workspace;
  if (mine) workspaces.set(mine, session.principal.workspace_slug || mine);

  append(clear(root), h("div", { class: "page-head" }, h("h1", {}, "API keys"),
    h("div", { class: "form-actions" },
      mine ? h("span", { class: "muted" }, `Workspace ${session.principal.workspace_slug || mine}`) : workspaceFilter,
      canAny(session, "create") ? h("button", { class: "primary", id: "create-key", onclick: () => showForm(null) }, "Create key") : null)),
    secretBox, formBox, status, list);

  // Every page of them: the listing answers 100 at a time by default, and the 101st workspace was missing
  // from the picker and the create form.
  async function everyWorkspace() {
    const found = [];
    for (let page = 0; page < 1000; page++) {
      const batch = (await api("GET", `/workspaces${query({ pageSize: 1000, currentPage: page })}`)).data;
      found.push(...batch);
      if (batch.length < 1000) break;
    }
    return found;
  }

  async function loadWorkspaces() {
    if (mine || !can(session, "workspaces.list")) return;
    try {
      const found = await everyWorkspace();
      workspaces = new Map(found.map((w) => [w.id, w.slug]));
      append(workspaceFilter, found.map((w) => h("option", { value: w.id }, w.slug)));
    } catch (e) { status.textContent = e.message; }
  }

  async function load() {
    try {
      render((await api("GET", `/api-keys${query({ workspace_id: mine ? "" : workspaceFilter.value })}`)).data);
    } catch (e) { status.className = "error-text"; status.textContent = e.message; }
  }

  function render(keys) {
    if (!keys.length) {
      append(clear(list), h("p", { class: "empty" }, "No API keys yet."));
      return;
    }
    append(clear(list), h("table", { class: "grid-table keys" },
      h("thead", {}, h("tr", {}, ["Name / key", "Type", "Workspace", "Scopes", "Rate limits", "Budget", "Status", ""]
        .map((t) => h("th", {}, t)))),
      h("tbody", { id: "key-rows" }, keys.map((k) => h("tr", { "data-key": k.id, "data-name": k.name },
        h("td", {}, h("strong", {}, k.name), h("div", { class: "mono muted nowrap masked-key" }, k.key),
          k.description ? h("div", { class: "muted" }, k.description) : null),
        h("td", {}, `${k.key_type} ${k.sub_type}`),
        h("td", {}, k.workspace_id ? workspaces.get(k.workspace_id) || k.workspace_id : "organisation"),
        h("td", { class: "scopes" }, h("div", { class: "markers" }, compactScopes(session, k.scopes))),
        h("td", { class: "rates" }, k.rate_limits.length
          ? k.rate_limits.map((r) => h("div", {}, `${fmt.int(r.value)} ${r.type} / ${UNITS[r.unit]}`))
          : h("span", { class: "muted" }, "none")),
        h("td", { class: "budget" }, budget(k)),
        h("td", {}, h("span", { class: `pill ${k.status === "active" ? "pill-ok" : "pill-bad"}` }, k.status)),
        h("td", {}, h("div", { class: "actions" },
          k.status === "active" && can(session, keyScope(k.key_type, k.sub_type, "update"))
            ? h("button", { class: "secondary", onclick: () => showForm(k) }, "Edit") : null,
          k.status === "active" && can(session, keyScope(k.key_type, k.sub_type, "delete"))
            ? h("button", { class: "danger", onclick: () => revoke(k) }, "Revoke") : null)))))));
  }

  async function revoke(k) {
    if (!window.confirm(`Revoke ${k.name}? Requests with it are refused at once.`)) return;
    try {
      await api("DELETE", `/api-keys/${k.id}`);
      status.className = "ok-text";
      status.textContent = `Revoked ${k.name}`;
      load();
    } catch (e) { status.className = "error-text"; status.textContent = e.message; }
  }

  function showSecret(name, secret) {
    const done = h("button", { class: "secondary", id: "new-key-done", onclick: () => clear(secretBox) }, "Done");
    const code = h("code", { class: "secret", id: "new-key-secret" }, secret);
    const copy = h("button", { class: "primary", onclick: () => navigator.clipboard?.writeText(secret) }, "Copy");
    append(clear(secretBox), h("div", { class: "card new-key" },
      h("h2", {}, `Key ${name} created`),
      h("p", {}, "Copy it now: it is shown this once and cannot be shown again."),
      h("div", { class: "form-actions" }, code, copy, done)));
  }

  function showForm(existing) {
    append(clear(formBox), keyForm(session, existing, workspaces, async (path, method, body, name) => {
      const answer = await api(method, path, body);
      clear(formBox);
      if (method === "POST") showSecret(name, answer.key);
      status.className = "ok-text";
      status.textContent = method === "POST" ? `Created ${name}` : `Saved ${name}`;
      load();
    }, () => clear(formBox)));
  }

  loadWorkspaces().then(load);
  return () => clear(secretBox); // leaving the page forgets the new secret
}

// One tag per resource: "logs: list, view", or "configs: *" when the key holds every action of it.
function compactScopes(session, scopes) {
  const byResource = new Map();
  for (const scope of scopes) {
    const [resource, action] = scope.split(".");
    if (!byResource.has(resource)) byResource.set(resource, []);
    byResource.get(resource).push(action);
  }
  return [...byResource].map(([resource, actions]) => {
    const every = (session.scope_actions || {})[resource] || [];
    const all = every.length > 0 && every.every((a) => actions.includes(a));
    return h("span", { class: "tag", title: actions.map((a) => `${resource}.${a}`).join(" ") },
      `${resource}: ${all && every.length > 1 ? "*" : actions.join(", ")}`);
  });
}

function budget(k) {
  const limit = k.usage_limits;
  if (!limit) return h("span", { class: "muted" }, "none");
  const money = limit.type === "cost";
  const show = (v) => (money ? fmt.cost(v) : fmt.int(v));
  const used = k.used || 0;
  const share = Math.min(1, used / limit.credit_limit);
  const level = share >= 1 ? "bad" : limit.alert_threshold && used >= limit.alert_threshold ? "warn" : "ok";
  const meter = h("meter", { class: `budget-meter budget-${level}`, min: 0, max: limit.credit_limit, value: used });
  return h("div", { class: "budget-cell" },
    h("div", { class: "nowrap budget-text" }, `${show(used)} of ${show(limit.credit_limit)}${money ? "" : " tokens"}`),
    meter,
    h("div", { class: "muted" }, limit.periodic_reset ? `resets ${limit.periodic_reset}` : "never resets"),
    k.usage_error ? h("div", { class: "error-text" }, k.usage_error) : null);
}

function keyForm(session, existing, workspaces, save, cancel) {
  const isNew = !existing;
  const mine = session.principal.workspace;
  const types = TYPES.filter((t) => SUB_TYPES.some((s) => can(session, keyScope(t, s, "create"))));
  const type = h("select", { id: "key-type", disabled: !isNew }, (isNew ? types : [existing.key_type]).map((t) => h("option", { value: t }, t)));
  const sub = h("select", { id: "key-sub-type", disabled: !isNew }, (isNew ? SUB_TYPES : [existing.sub_type]).map((s) => h("option", { value: s }, s)));
  const workspace = h("select", { id: "key-workspace-choice", disabled: !isNew || Boolean(mine) },
    (mine ? [[mine, workspaces.get(mine)]] : [...workspaces]).map(([id, slug]) => h("option", { value: id, selected: existing?.workspace_id === id }, slug)));
  const workspaceField = h("label", { class: "field" }, "Workspace", workspace);
  const name = h("input", { id: "key-name", placeholder: "ci-service", value: existing?.name || "" });

  // Scopes: what this sign-in holds (it cannot grant more), plus what the key already has.
  const held = new Set(session.principal.scopes);
  const had = new Set(existing ? existing.scopes : ["completions.write"]);
  const byResource = new Map();
  for (const scope of [...new Set([...held, ...had])].sort()) {
    const [resource, action] = scope.split(".");
    if (!byResource.has(resource)) byResource.set(resource, []);
    byResource.get(resource).push(action);
  }
  const scopeBox = h("div", { class: "scope-grid", id: "key-scopes" }, [...byResource].map(([resource, actions]) =>
    h("div", { class: "scope-row" }, h("span", { class: "scope-resource" }, resource), actions.map((action) => {
      const scope = `${resource}.${action}`;
      return h("label", { class: "scope-choice" }, h("input", { type: "checkbox", value: scope, checked: had.has(scope), disabled: !held.has(scope) }), action);
    }))));

  const rates = h("div", { class: "rate-rows", id: "rate-rows" });
  const addRate = (r = { type: "requests", unit: "rpm", value: "" }) => rates.append(h("div", { class: "rate-row" },
    h("input", { class: "rate-value", type: "number", min: 1, step: 1, placeholder: "100", value: r.value }),
    h("select", { class: "rate-type" }, ["requests", "tokens"].map((t) => h("option", { value: t, selected: r.type === t }, t))),
    h("span", { class: "muted" }, "per"),
    h("select", { class: "rate-unit" }, Object.entries(UNITS).map(([u, label]) => h("option", { value: u, selected: r.unit === u }, label))),
    h("button", { type: "button", class: "link-button", onclick: (e) => e.target.closest(".rate-row").remove() }, "Remove")));
  for (const r of existing?.rate_limits || []) addRate(r);

  const limit = existing?.usage_limits;
  const budgetType = h("select", { id: "budget-type" }, [["", "no budget"], ["tokens", "tokens"], ["cost", "cost (USD)"]]
    .map(([v, label]) => h("option", { value: v, selected: (limit?.type || "") === v }, label)));
  const credit = h("input", { id: "budget-limit", type: "number", min: 0, step: "any", placeholder: "10000", value: limit?.credit_limit ?? "" });
  const reset = h("select", { id: "budget-reset" }, [...RESETS, "never"].map((r) => h("option", { value: r, selected: (limit?.periodic_reset || "never") === r }, r)));
  const alert = h("input", { id: "budget-alert", type: "number", min: 0, step: "any", placeholder: "optional", value: limit?.alert_threshold ?? "" });
  const error = h("p", { class: "error-text", id: "key-error", role: "alert" });
  const syncType = () => { workspaceField.hidden = type.value !== "workspace"; };
  type.addEventListener("change", syncType);
  syncType();

  function limitsOf() {
    const rateLimits = [...rates.querySelectorAll(".rate-row")].map((row) => ({
      type: row.querySelector(".rate-type").value, unit: row.querySelector(".rate-unit").value,
      value: Number(row.querySelector(".rate-value").value),
    }));
    const usage = budgetType.value ? {
      type: budgetType.value, credit_limit: Number(credit.value),
      periodic_reset: reset.value === "never" ? null : reset.value,
      alert_threshold: alert.value === "" ? null : Number(alert.value),
    } : {};
    return { rate_limits: rateLimits, usage_limits: usage };
  }
  const before = JSON.stringify(limitsOf());

  async function submit(e) {
    e.preventDefault();
    error.textContent = "";
    const scopes = [...scopeBox.querySelectorAll("input:checked")].map((i) => i.value);
    const body = { name: name.value.trim() };
    const limits = limitsOf();
    try {
      if (isNew) {
        if (type.value === "workspace") body.workspace_id = workspace.value;
        body.scopes = scopes;
        if (limits.rate_limits.length) body.rate_limits = limits.rate_limits;
        if (budgetType.value) body.usage_limits = limits.usage_limits;
        await save(`/api-keys/${type.value}/${sub.value}`, "POST", body, body.name);
      } else {
        // Only what changed: a key cannot change its own limits, nor anyone grant scopes they lack.
        if (JSON.stringify([...scopes].sort()) !== JSON.stringify([...existing.scopes].sort())) body.scopes = scopes;
        if (JSON.stringify(limits) !== before) Object.assign(body, limits);
        await save(`/api-keys/${existing.id}`, "PATCH", body, body.name);
      }
    } catch (err) { error.textContent = err.message; }
  }

  return h("form", { class: "card key-form", id: "key-form", onsubmit: submit },
    h("h2", {}, isNew ? "Create API key" : `Edit ${existing.name}`),
    h("div", { class: "row" }, h("label", { class: "field grow" }, "Name", name),
      h("label", { class: "field" }, "Type", type), h("label", { class: "field" }, "Sub-type", sub), workspaceField),
    h("fieldset", { class: "headers" }, h("legend", {}, "Scopes"), scopeBox),
    h("fieldset", { class: "headers" }, h("legend", {}, "Rate limits"), rates,
      h("button", { type: "button", class: "link-button", id: "add-rate", onclick: () => addRate() }, "+ Add rate limit")),
    h("fieldset", { class: "headers" }, h("legend", {}, "Budget (usage limit)"),
      h("div", { class: "row" }, h("label", { class: "field" }, "Counts", budgetType), h("label", { class: "field" }, "Limit", credit),
        h("label", { class: "field" }, "Resets", reset), h("label", { class: "field" }, "Alert at", alert))),
    error,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary", id: "save-key" }, isNew ? "Create" : "Save"),
      h("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel")));
}
