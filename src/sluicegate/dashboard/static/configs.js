// Configs: the saved configs, and an editor that validates as you type (errors name their JSON path).
import { api } from "./api.js";
import { append, clear, h } from "./dom.js";

export function configsPage(root) {
  const list = h("div", { class: "card table-card" });
  const editorBox = h("div", { id: "config-editor-box" });
  const status = h("p", { class: "muted", id: "configs-status" });
  append(clear(root), h("div", { class: "page-head" }, h("h1", {}, "Configs"),
    h("button", { class: "primary", id: "new-config", onclick: () => edit(null) }, "New config")), editorBox, status, list);

  async function load() {
    try { render((await api("GET", "/configs")).configs); } catch (e) { status.textContent = e.message; }
  }

  function render(configs) {
    if (!configs.length) { append(clear(list), h("p", { class: "empty" }, "No saved configs yet.")); return; }
    append(clear(list), h("table", { class: "grid-table" },
      h("thead", {}, h("tr", {}, ["Id", "Notes", "Updated", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, configs.map((c) => h("tr", { "data-id": c.id }, h("td", { class: "mono" }, c.id), h("td", {}, c.notes || ""),
        h("td", {}, new Date(c.updated_at).toLocaleString("en-GB")),
        h("td", { class: "actions" }, h("button", { class: "secondary", onclick: () => edit(c) }, "Edit"),
          h("button", { class: "danger", onclick: () => remove(c.id) }, "Delete")))))));
  }

  async function remove(id) {
    if (!window.confirm(`Delete config ${id}?`)) return;
    try { await api("DELETE", `/configs/${id}`); load(); } catch (e) { status.textContent = e.message; }
  }

  function edit(config) {
    append(clear(editorBox), editor(config, async (id, text, notes) => {
      if (config) await api("PUT", `/configs/${config.id}`, { config: text, notes });
      else await api("POST", "/configs", { id, config: text, notes });
      clear(editorBox);
      status.textContent = `Saved ${id}`;
      load();
    }, () => clear(editorBox)));
  }

  load();
}

function editor(config, save, cancel) {
  const initial = config ? pretty(config.config) : '{\n  "strategy": { "mode": "fallback" },\n  "targets": [\n    { "provider": "@my-private-llm" }\n  ]\n}';
  const id = h("input", { id: "config-id", placeholder: "my-config", value: config?.id || "", disabled: Boolean(config) });
  const notes = h("input", { id: "config-notes", value: config?.notes || "" });
  const text = h("textarea", { id: "config-text", spellcheck: "false", rows: 16 }, initial);
  const problems = h("ul", { class: "problems", id: "config-problems" });
  const saveButton = h("button", { type: "submit", class: "primary", id: "save-config" }, "Save");
  const error = h("p", { class: "error-text", role: "alert" });
  let timer = null, sequence = 0;

  async function validate() {
    const mine = ++sequence;
    try {
      const result = await api("POST", "/configs/validate", { config: text.value });
      if (mine !== sequence) return;  // an older answer arriving late
      append(clear(problems), result.errors.map((p) => h("li", {}, h("code", {}, p.pointer), " ", p.message)));
      if (!result.errors.length) problems.append(h("li", { class: "ok-text" }, "Valid"));
      problems.className = result.errors.length ? "problems has-errors" : "problems";
    } catch (e) { error.textContent = e.message; }
  }
  text.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(validate, 250); });
  validate();

  return h("form", { class: "card config-editor", id: "config-editor", onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = "";
    try { await save(id.value.trim(), text.value, notes.value); } catch (err) { error.textContent = err.message; }
  } },
    h("h2", {}, config ? `Edit ${config.id}` : "New config"),
    h("div", { class: "row" }, h("label", { class: "field" }, "Id", id), h("label", { class: "field grow" }, "Notes", notes)),
    text, problems, error,
    h("div", { class: "form-actions" }, saveButton, h("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel")));
}

function pretty(text) { try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; } }
