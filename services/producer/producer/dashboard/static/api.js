// The JSON API, with the bearer token the user typed once. The token lives in sessionStorage: it
// survives reloads and page changes in this tab and is gone when the tab closes.
import { fill } from "./dom.js";

const KEY = "taskq.dashboard.token";

export class ApiError extends Error {
  constructor(status, problem, headers = new Headers()) {
    super((problem && problem.detail) || `HTTP ${status}`);
    this.status = status;
    this.headers = headers;
    this.problem = problem || {};
  }
}

let asking = null;

// One prompt for however many requests were refused at once; resolves when a token was entered.
function askForToken(refused) {
  if (asking) return asking;
  const panel = document.getElementById("token-panel");
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  const error = document.getElementById("token-error");
  fill(error, refused ? "That token was refused: check it and try again." : "");
  input.setAttribute("aria-invalid", refused ? "true" : "false");
  panel.hidden = false;
  input.focus();
  asking = new Promise((resolve) => {
    form.addEventListener(
      "submit",
      (event) => {
        event.preventDefault();
        sessionStorage.setItem(KEY, input.value.trim());
        input.value = "";
        panel.hidden = true;
        asking = null;
        resolve();
      },
      { once: true },
    );
  });
  return asking;
}

function headers(hasBody, extra) {
  const out = { Accept: "application/json", ...extra };
  const token = sessionStorage.getItem(KEY);
  if (token) out.Authorization = `Bearer ${token}`;
  if (hasBody) out["Content-Type"] = "application/json";
  return out;
}

// fetch with the token; a 401 asks for the token (again, if the stored one was refused) and retries.
// `headers` adds to (or overrides) the usual ones; `signal` aborts (an event stream's stop()).
export async function request(path, { method = "GET", body, headers: extra = {}, signal } = {}) {
  for (;;) {
    const response = await fetch(path, {
      method,
      headers: headers(body !== undefined, extra),
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      signal,
    });
    if (response.status !== 401) return response;
    const refused = sessionStorage.getItem(KEY) !== null;
    sessionStorage.removeItem(KEY);
    await askForToken(refused);
  }
}

// JSON of a 2xx answer; anything else raises ApiError carrying the problem document.
export async function api(path, options = {}) {
  const response = await request(path, options);
  const type = response.headers.get("content-type") || "";
  const doc = response.status === 204 || !type.includes("json") ? null : await response.json();
  if (!response.ok) throw new ApiError(response.status, doc, response.headers);
  return doc;
}
