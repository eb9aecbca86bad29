// Model Catalog: the providers, Add Provider (as in the product's Step 1), edit, delete, test connection.
// Header values are never shown: the API answers them masked, and an edit sends only the values typed.
import { api } from "./api.js";
import { append, clear, h } from "./dom.js";

export function catalogPage(root, session) {
  const list = h("div", { class: "card table-card" });
  const status = h("p", { class: "muted", id: "catalog-status" });
  const formBox = h("div", { id: "provider-form-box" });
  append(clear(root), h("div", { class: "page-head" }, h("h1", {}, "Model Catalog"),
    h("button", { class: "primary", id: "add-provider", onclick: () => showForm(null) }, "Add Provider")),
    formBox, status, list);

  async function load() {
    try { render((await api("GET", "/providers")).providers); } catch (e) { status.textContent = e.message; }
  }

  function render(providers) {
    if (!providers.length) {
      append(clear(list), h("p", { class: "empty" }, "No providers yet. Add your privately hosted model with Add Provider."));
      return;
    }
    append(clear(list), h("table", { class: "grid-table" },
      h("thead", {}, h("tr", {}, ["Provider", "Spec", "Custom host", "Auth headers", "Models", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, providers.map((p) => h("tr", { "data-slug": p.slug },
        h("td", {}, h("strong", {}, `@${p.slug}`), p.notes ? h("div", { class: "muted" }, p.notes) : null),
        h("td", {}, p.spec), h("td", { class: "mono" }, p.custom_host),
        h("td", {}, Object.entries(p.headers).map(([k, v]) => h("div", { class: "mono" }, `${k}: ${v}`))),
        h("td", {}, p.models.length ? p.models.join(", ") : "any"),
        h("td", { class: "actions" },
          h("button", { class: "secondary", onclick: () => test(p.slug) }, "Test connection"),
          h("button", { class: "secondary", onclick: () => showForm(p) }, "Edit"),
          h("button", { class: "danger", onclick: () => remove(p.slug) }, "Delete")))))));
  }

  async function test(slug) {
    status.className = "muted";
    status.textContent = `Testing @${slug}…`;
    try {
      const r = await api("POST", `/providers/${slug}/test`);
      status.className = r.ok ? "ok-text" : "error-text";
      status.textContent = r.refused ? `Refused by the SSRF guard: ${r.refused}`
        : r.error ? `No answer from ${r.url}: ${r.error}`
        : `${r.url} answered ${r.status}: ${r.body.slice(0, 300)}`;
    } catch (e) { status.className = "error-text"; status.textContent = e.message; }
  }

  async function remove(slug) {
    if (!window.confirm(`Delete @${slug}?`)) return;
    try { await api("DELETE", `/providers/${slug}`); status.textContent = `Deleted @${slug}`; load(); }
    catch (e) { status.className = "error-text"; status.textContent = e.message; }
  }

  function showForm(existing) {
    append(clear(formBox), providerForm(session, existing, async (body) => {
      if (existing) await api("PATCH", `/providers/${existing.slug}`, body);
      else await api("POST", "/providers", body);
      clear(formBox);
      status.className = "ok-text";
      status.textContent = existing ? `Saved @${existing.slug}` : `Created @${body.slug}`;
      load();
    }, () => clear(formBox)));
  }

  load();
}

function providerForm(session, existing, save, cancel) {
  const isNew = !existing;
  const hosted = session.hosted || [];
  const privateToggle = h("input", { type: "checkbox", id: "private-toggle", checked: isNew || !hosted.some((p) => p.base_url === existing.custom_host) });
  const spec = h("select", { id: "spec", name: "spec" }, (session.specs || ["openai"]).map((s) => h("option", { value: s, selected: existing?.spec === s }, s === "openai" ? "OpenAI" : s)));
  const hostedSelect = h("select", { id: "hosted" }, hosted.map((p) => h("option", { value: p.id }, p.id)));
  const host = h("input", { id: "custom-host", name: "custom_host", placeholder: "http://10.0.0.5:8000/v1", value: existing?.custom_host || "" });
  const name = h("input", { id: "slug", name: "slug", placeholder: "my-private-llm", value: existing?.slug || "", disabled: !isNew });
  const models = h("input", { id: "models", placeholder: "any (comma-separated to restrict)", value: existing?.models.join(", ") || "" });
  const rows = h("div", { class: "header-rows", id: "header-rows" });
  const error = h("p", { class: "error-text", id: "provider-error", role: "alert" });
  const addRow = (key = "", masked = "") => rows.append(h("div", { class: "header-row" },
    h("input", { class: "header-name", placeholder: "Authorization", value: key, "data-original": key }),
    h("input", { class: "header-value", type: "password", autocomplete: "off", placeholder: masked || "Bearer …" }),
    h("button", { type: "button", class: "link-button", onclick: (e) => e.target.closest(".header-row").remove() }, "Remove")));
  for (const [k, v] of Object.entries(existing?.headers || {})) addRow(k, `${v} (unchanged)`);
  if (!existing) addRow();
  const privateFields = h("div", { class: "private-fields" }, h("label", { class: "field" }, "API specification", spec),
    h("label", { class: "field" }, "Custom Host", host));
  const hostedFields = h("div", { class: "hosted-fields" }, h("label", { class: "field" }, "Provider", hostedSelect));
  const sync = () => { privateFields.hidden = !privateToggle.checked; hostedFields.hidden = privateToggle.checked; };
  privateToggle.addEventListener("change", sync);
  sync();

  async function submit(e) {
    e.preventDefault();
    error.textContent = "";
    const body = {};
    if (privateToggle.checked) { body.spec = spec.value; body.custom_host = host.value.trim(); }
    else {
      const choice = hosted.find((p) => p.id === hostedSelect.value);
      body.spec = choice.spec; body.custom_host = choice.base_url;
    }
    if (isNew) body.slug = name.value.trim();
    body.models = models.value.split(",").map((m) => m.trim()).filter(Boolean);
    const headers = {};
    for (const row of rows.querySelectorAll(".header-row")) {
      const key = row.querySelector(".header-name").value.trim(), value = row.querySelector(".header-value").value;
      if (key && (value || isNew)) headers[key] = value;
    }
    for (const k of Object.keys(existing?.headers || {})) {
      if (![...rows.querySelectorAll(".header-name")].some((i) => i.value.trim() === k)) headers[k] = null;
    }
    body.headers = headers;
    try { await save(body); } catch (err) { error.textContent = err.message; }
  }

  return h("form", { class: "card provider-form", id: "provider-form", onsubmit: submit },
    h("h2", {}, isNew ? "Add Provider" : `Edit @${existing.slug}`),
    h("label", { class: "toggle" }, privateToggle, h("span", {}, "Local/Privately hosted provider")),
    privateFields, hostedFields,
    h("fieldset", { class: "headers" }, h("legend", {}, "Authentication headers"), rows,
      h("button", { type: "button", class: "link-button", id: "add-header", onclick: () => addRow() }, "+ Add header")),
    h("label", { class: "field" }, "Name (slug)", name),
    h("label", { class: "field" }, "Models", models),
    error,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary", id: "save-provider" }, isNew ? "Create" : "Save"),
      h("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel")));
}
