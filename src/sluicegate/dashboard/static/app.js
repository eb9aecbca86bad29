// The dashboard's shell: sign in, the page router (#/logs …), sign out.
import { analyticsPage } from "./analytics.js";
import { api, setCsrf } from "./api.js";
import { catalogPage } from "./catalog.js";
import { configsPage } from "./configs.js";
import { logsPage } from "./logs.js";

const PAGES = { logs: logsPage, analytics: analyticsPage, catalog: catalogPage, configs: configsPage };
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
  $("who").textContent = `Signed in as ${data.principal.name}`;
  route();
}

function route() {
  if (!session) return;
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const page = PAGES[name] ? name : "logs";
  for (const link of document.querySelectorAll(".sidebar a")) link.classList.toggle("active", link.dataset.page === page);
  if (leave) leave();
  leave = PAGES[page]($("page"), session) || null;
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
