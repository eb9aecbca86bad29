// The dashboard's shell: sign in, the page router (#/logs …), sign out.
import { analyticsPage } from "./analytics.js";
import { api, setCsrf } from "./api.js";
import { catalogPage } from "./catalog.js";
import { configsPage } from "./configs.js";
import { keysPage } from "./keys.js";
import { logsPage } from "./logs.js";
import { targetsPage } from "./targets.js";

const PAGES = { logs: logsPage, analytics: analyticsPage, catalog: catalogPage, configs: configsPage, keys: keysPage,
                targets: targetsPage };
// The access-control scopes that open each page (any one of them); docs/dashboard.md has the whole map.
const KEY_LIST = ["organisation", "workspace"].flatMap((t) => ["service", "user"].map((s) => `${t}_${s}_api_keys.list`));
const NEEDS = { logs: ["logs.list"], analytics: ["analytics.view"], catalog: ["providers.list"], configs: ["configs.list"],
                keys: KEY_LIST, targets: ["analytics.view"] };
// Targets are shared by every workspace: only organisation-level sign-ins see them (the API says so too).
const ORGANISATION_ONLY = new Set(["targets"]);
const $ = (id) => document.getElementById(id);
let session = null, leave = null;

function showSignIn(message = "") {
  session = null;
  setCsrf(null);
  if (leave) leave();
  $("shell").hidden = true;
  document.body.classList.remove("signed-in");
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  $("token").focus();
}

function enter(data) {
  session = data;
  setCsrf(data.csrf_token);
  $("signin").hidden = true;
  $("shell").hidden = false;
  document.body.classList.add("signed-in");
  const p = data.principal;
  $("who").textContent = `Signed in as ${p.name}${p.workspace ? ` · workspace ${p.workspace_slug || p.workspace}` : ""}`;
  for (const link of document.querySelectorAll(".sidebar a")) {
    const open = allowed(link.dataset.page);
    link.classList.toggle("nav-disabled", !open);
    const why = ORGANISATION_ONLY.has(link.dataset.page) && p.workspace ? "Needs an organisation-level sign-in"
      : `Needs the scope ${NEEDS[link.dataset.page].join(" or ")}`;
    link.title = open ? "" : why;
  }
  route();
}

function allowed(page) {
  if (!session || (ORGANISATION_ONLY.has(page) && session.principal.workspace)) return false;
  return NEEDS[page].some((scope) => session.principal.scopes.includes(scope));
}

function route() {
  if (!session) return;
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const page = PAGES[name] && allowed(name) ? name : Object.keys(PAGES).find(allowed);
  for (const link of document.querySelectorAll(".sidebar a")) link.classList.toggle("active", link.dataset.page === page);
  if (leave) leave();
  leave = page ? PAGES[page]($("page"), session) || null : null;
}

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    enter(await api("POST", "/session", { token: $("token").value }));
    $("token").value = "";
  } catch (err) { $("signin-error").textContent = err.message; }
});

$("signout").addEventListener("click", async () => {
  try { await api("DELETE", "/session"); } finally { showSignIn("Signed out."); }
});

window.addEventListener("hashchange", route);
window.addEventListener("signed-out", () => showSignIn("Your session ended: sign in again."));
api("GET", "/session").then(enter, () => showSignIn());
