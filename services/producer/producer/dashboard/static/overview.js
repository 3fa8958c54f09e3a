// Overview: queue cards, the throughput chart, live workers and job lookup.
import { api, ApiError } from "./api.js";
import { drawLine } from "./chart.js";
import { facts, fill, fmtAge, fmtRate, fmtTime, h, jobHref } from "./dom.js";
import { latencyChart } from "./latency.js";
import { live } from "./live.js";

const WINDOW_MS = 5 * 60 * 1000; // both charts' span
const RATE_SPAN_MS = 5000; // a card's rate is averaged over the last few seconds, not one noisy poll

// Per queue and in total: processed_total sampled over time, kept for the chart's window.
const history = new Map();

function record(name, t, processed) {
  const samples = history.get(name) || [];
  samples.push({ t, processed });
  while (samples.length > 2 && samples[0].t < t - WINDOW_MS) samples.shift();
  history.set(name, samples);
  return samples;
}

function rate(samples, spanMs) {
  if (samples.length < 2) return null;
  const last = samples[samples.length - 1];
  const first = samples.find((s) => s.t >= last.t - spanMs) || samples[0];
  const from = first === last ? samples[samples.length - 2] : first;
  const seconds = (last.t - from.t) / 1000;
  return seconds > 0 ? Math.max(0, last.processed - from.processed) / seconds : null;
}

// Rates between consecutive samples, for the chart.
function series(samples) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].t - samples[i - 1].t) / 1000;
    if (dt > 0) out.push({ t: samples[i].t, v: Math.max(0, samples[i].processed - samples[i - 1].processed) / dt });
  }
  return out;
}

function say(text) {
  fill(document.getElementById("queue-message"), text);
}

// The last /queues document and each card's rate, so a control's answer repaints at once.
let lastQueues = [];
const lastRates = new Map();

// Pause, resume or purge (after the dialog): the API answers, the message says what happened.
async function control(q, action) {
  const path = `/queues/${encodeURIComponent(q.queue)}/${action}`;
  try {
    if (action === "purge") {
      const done = await api(path, { method: "POST", body: { confirm: q.queue } });
      say(`Purged ${done.purged} pending job${done.purged === 1 ? "" : "s"} from queue ${q.queue}.`);
    } else {
      const view = await api(path, { method: "POST" });
      lastQueues = lastQueues.map((other) => (other.queue === view.queue ? view : other));
      paintQueues();
      say(`Queue ${q.queue} is ${view.paused ? "paused: workers take no new job" : "running again"}.`);
    }
  } catch (e) {
    say(`Could not ${action} queue ${q.queue}: ${e.message}`);
  }
}

// The confirmation: a modal <dialog> (focus moves into it and stays there, Escape cancels), opened
// with Cancel focused; on close the keyboard goes back to the card's Purge button.
function askPurge(q) {
  const dialog = document.getElementById("purge-dialog");
  fill(document.getElementById("purge-title"), `Purge queue ${q.queue}?`);
  fill(
    document.getElementById("purge-text"),
    `Delete its ${q.pending} pending job${q.pending === 1 ? "" : "s"} for good. Scheduled and running jobs stay. This cannot be undone.`,
  );
  dialog.returnValue = "";
  dialog.addEventListener(
    "close",
    () => {
      refocus(q.queue, "purge");
      if (dialog.returnValue === "confirm") control(q, "purge");
    },
    { once: true },
  );
  dialog.showModal();
}

function refocus(queue, action) {
  const button = [...document.querySelectorAll("#queue-cards button")].find(
    (b) => b.dataset.queue === queue && b.dataset.action === action,
  );
  if (button) button.focus();
}

function controls(q) {
  const toggle = q.paused ? "resume" : "pause";
  return h(
    "div",
    { class: "actions" },
    h("button", { type: "button", "data-action": toggle, "data-queue": q.queue, onclick: () => control(q, toggle) }, q.paused ? "Resume" : "Pause"),
    h("button", { type: "button", class: "danger", "data-action": "purge", "data-queue": q.queue, "aria-haspopup": "dialog", onclick: () => askPurge(q) }, "Purge"),
  );
}

function queueCard(q, perSecond) {
  const title = h("h3", {}, q.queue, q.paused ? [" ", h("span", { class: "badge status-running", "data-field": "paused" }, "Paused")] : null);
  const notes = [];
  if (q.paused) notes.push(h("p", { class: "note" }, "Paused: jobs are accepted, workers take none."));
  if (!q.declared) notes.push(h("p", { class: "note" }, "Not declared: new jobs are refused."));
  if (q.workers === 0 && q.pending > 0) notes.push(h("p", { class: "note" }, "No live worker serves this queue."));
  return h(
    "article",
    { class: "card", "aria-label": `Queue ${q.queue}`, "data-queue": q.queue },
    title,
    facts([
      ["Pending", h("span", { "data-field": "pending" }, q.pending)],
      ["Scheduled", h("span", { "data-field": "scheduled" }, q.scheduled)],
      ["Running", h("span", { "data-field": "running" }, q.running)],
      ["Dead", h("span", { "data-field": "dead" }, q.dead)],
      ["Processed / s", h("span", { "data-field": "rate" }, fmtRate(perSecond))],
      ["Oldest pending", fmtAge(q.oldest_pending_age_seconds)],
      ["Workers", q.workers],
    ]),
    notes,
    controls(q),
  );
}

function paintQueues() {
  // The cards are rebuilt on every refresh: the keyboard stays on the control it was on (a
  // Pause button that became Resume keeps it too).
  const focused = document.activeElement;
  const where = focused && focused.closest && focused.closest("#queue-cards") ? focused.dataset : null;
  const container = document.getElementById("queue-cards");
  const cards = lastQueues.map((q) => queueCard(q, lastRates.get(q.queue)));
  if (cards.length) fill(container, cards);
  else fill(container, h("p", { class: "muted" }, "No queue has had a job yet."));
  if (where && where.queue) {
    const q = lastQueues.find((other) => other.queue === where.queue);
    refocus(where.queue, where.action === "purge" || !q ? where.action : q.paused ? "resume" : "pause");
  }
}

function renderQueues(queues) {
  const now = Date.now();
  let total = 0;
  for (const q of queues) {
    total += q.processed_total;
    lastRates.set(q.queue, rate(record(`q:${q.queue}`, now, q.processed_total), RATE_SPAN_MS));
  }
  lastQueues = queues;
  paintQueues();
  const all = record("all", now, total);
  drawLine(document.getElementById("throughput-chart"), series(all), {
    windowMs: WINDOW_MS,
    label: "Jobs processed per second",
    unit: "jobs/s",
  });
}

// The tasks a worker serves: a count that opens to the names (a fleet may register dozens).
function tasksCell(w, open) {
  const names = w.tasks || [];
  if (!names.length) return h("td", {}, "—");
  return h(
    "td",
    {},
    h(
      "details",
      { class: "tasks", open },
      h("summary", {}, `${names.length} task${names.length === 1 ? "" : "s"}`),
      h("ul", {}, names.map((name) => h("li", { class: "mono" }, name))),
    ),
  );
}

function renderWorkers(workers) {
  const container = document.getElementById("workers");
  if (!workers.length) {
    fill(container, h("p", { class: "muted" }, "No live worker."));
    return;
  }
  // The table is rebuilt on every refresh: a task list someone opened stays open, and the keyboard
  // stays on the summary it was on.
  const opened = new Set([...container.querySelectorAll("details[open]")].map((d) => d.closest("tr").dataset.worker));
  const focused = document.activeElement;
  const focusedWorker = focused && focused.matches("#workers summary") ? focused.closest("tr").dataset.worker : null;
  const rows = workers.map((w) =>
    h(
      "tr",
      { "data-worker": w.id },
      h("th", { scope: "row", class: "mono" }, w.id),
      h("td", {}, `${w.host} (pid ${w.pid})`),
      h("td", {}, w.queues.join(", ")),
      tasksCell(w, opened.has(w.id)),
      h("td", {}, `${w.jobs.length} / ${w.concurrency}`),
      // UUIDv7 ids of one moment share their first digits: the last ones tell jobs apart.
      h("td", {}, w.jobs.length ? w.jobs.map((id, i) => [i ? " " : "", h("a", { href: jobHref(id), class: "mono", "aria-label": `Job ${id}` }, `…${id.slice(-8)}`)]) : "—"),
      h("td", {}, fmtTime(w.last_heartbeat)),
    ),
  );
  fill(
    container,
    h(
      "table",
      {},
      h("caption", { class: "muted" }, `${workers.length} live worker${workers.length === 1 ? "" : "s"}`),
      h("thead", {}, h("tr", {}, ["Worker", "Host", "Queues", "Tasks", "Busy", "Jobs in hand", "Last heartbeat"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows),
    ),
  );
  if (focusedWorker) {
    const again = [...container.querySelectorAll("tr[data-worker] summary")].find((el) => el.closest("tr").dataset.worker === focusedWorker);
    if (again) again.focus();
  }
}

function lookup() {
  const form = document.getElementById("lookup-form");
  const input = document.getElementById("lookup-id");
  const error = document.getElementById("lookup-id-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = input.value.trim();
    fill(error);
    input.removeAttribute("aria-invalid");
    if (!id) {
      fill(error, "Enter a job id.");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    try {
      await api(`/jobs/${encodeURIComponent(id)}`);
      window.location.assign(jobHref(id));
    } catch (e) {
      // The API's own words: a malformed id is its 422 message, an unknown one its 404.
      const errors = e instanceof ApiError && e.problem.errors;
      fill(error, errors && errors.length ? errors[0].msg : e.message);
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  });
}

export function start() {
  live.queues(renderQueues);
  live.workers(renderWorkers);
  const latency = latencyChart({
    chart: document.getElementById("latency-chart"),
    text: document.getElementById("latency-now"),
    windowMs: WINDOW_MS,
  });
  live.events(latency.onEvent, latency.unavailable);
  lookup();
}
