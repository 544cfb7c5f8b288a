// The shell's entry point: theme, API key, the page for this URL. Pages live in their own modules.
import {api, showError, KEY} from "./api.js";
import {renderTraces} from "./traces.js";
import {renderTrace} from "./trace.js";
import {renderUsage} from "./usage.js";
import {renderSessions} from "./sessions.js";
import {renderAlerts} from "./alerts.js";

const THEME = "spanhouse.theme";

function setupTheme() {
  const saved = localStorage.getItem(THEME);
  if (saved) document.documentElement.dataset.theme = saved;
  document.getElementById("theme").addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === "dark"
      : matchMedia("(prefers-color-scheme: dark)").matches;
    const next = dark ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem(THEME, next);
    window.dispatchEvent(new Event("themechange"));
  });
}

async function start() {
  setupTheme();
  const main = document.getElementById("main");
  const path = location.pathname;
  const page = path.startsWith("/ui/trace/") ? "trace" : (path.replace(/^\/ui\/?/, "") || "traces");
  for (const link of document.querySelectorAll(".tabs a")) {
    if (link.dataset.page === page || (page === "trace" && link.dataset.page === "traces")) {
      link.setAttribute("aria-current", "page");
    }
  }
  let who;
  try {
    who = await api("whoami");
  } catch (error) {
    showError(main, error);
    return;
  }
  const label = document.getElementById("who");
  label.textContent = who.keys_required ? (who.admin ? "admin" : "tenant " + who.tenant) : "";
  if (who.keys_required && sessionStorage.getItem(KEY)) {
    const out = document.getElementById("signout");
    out.hidden = false;
    out.addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      location.reload();
    });
  }
  const ctx = {main, who};
  try {
    if (page === "trace") await renderTrace(ctx, decodeURIComponent(path.slice("/ui/trace/".length)));
    else if (page === "usage") await renderUsage(ctx);
    else if (page === "sessions") await renderSessions(ctx);
    else if (page === "alerts") await renderAlerts(ctx);
    else await renderTraces(ctx);
  } catch (error) {
    showError(main, error);
  }
}

start();
