// The UI's JSON API client: the key from sessionStorage as a header (never in a URL), errors shown as text.
import {h, clear} from "./dom.js";

export const KEY = "spanhouse.apiKey";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET /ui/api/<path>?<params> with the key from sessionStorage (a header, never the URL). */
export async function api(path, params) {
  const query = params ? "?" + new URLSearchParams(params).toString() : "";
  const key = sessionStorage.getItem(KEY);
  let response;
  // The endpoint runs a few queries per caller at once (query.max_concurrent_per_caller); a page that changes
  // filters quickly may find them busy for a moment: 429 is retried briefly before it is shown.
  for (let attempt = 0; ; attempt++) {
    response = await fetch("/ui/api/" + path + query, {
      headers: key ? {Authorization: "Bearer " + key} : {},
      credentials: "omit",
      cache: "no-store",
    });
    if (response.status !== 429 || attempt >= 4) break;
    await new Promise((resolve) => setTimeout(resolve, 150 * (attempt + 1)));
  }
  let doc = null;
  try {
    doc = await response.json();
  } catch (e) {
    doc = {error: "the collector's answer was not JSON (" + response.status + ")"};
  }
  if (!response.ok) {
    if (response.status === 401) askForKey(doc.error);
    throw new ApiError(response.status, doc.error || response.statusText);
  }
  return doc;
}

export function showError(main, error) {
  if (error instanceof ApiError && error.status === 401) return; // the key form is showing
  clear(main).appendChild(h("div", {class: "empty error", role: "alert"},
    h("h2", {}, "Could not load this page"), h("p", {}, String(error.message || error))));
}

export function askForKey(reason) {
  const main = document.getElementById("main");
  const input = h("input", {type: "password", id: "apikey", name: "apikey", autocomplete: "off",
    placeholder: "shk_…", required: true, "aria-label": "API key"});
  const form = h("form", {class: "keyform", id: "keyform"},
    h("h2", {}, "API key"),
    h("p", {}, "This collector has API keys configured. Enter yours: a tenant key shows that tenant's traces, "
      + "an admin key shows all. The key stays in this browser tab (sessionStorage) and is sent as a header."),
    reason && sessionStorage.getItem(KEY) ? h("p", {class: "error"}, reason) : null,
    h("div", {class: "row"}, input, h("button", {type: "submit"}, "Open")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    location.reload();
  });
  clear(main).appendChild(form);
  input.focus();
}

