// The job page: everything the API knows about one job, refreshed live until the job ends.
import { api, request } from "./api.js";
import { facts, fill, fmtTime, h, statusBadge } from "./dom.js";
import { live } from "./live.js";

function json(value) {
  return h("pre", { class: "json", tabindex: "0" }, JSON.stringify(value, null, 2));
}

// What an event says in the history (progress reports move the bar instead).
function describe(event) {
  const what = {
    queued: "queued",
    scheduled: "scheduled",
    running: `running (attempt ${event.attempt})`,
    retry: `attempt ${event.attempt} failed (${event.error || "error"}); retry scheduled`,
    succeeded: "succeeded",
    failed: `failed (${event.error || "error"}${event.reason ? `, ${event.reason}` : ""})`,
    cancelled: "cancelled",
    cancel_requested: "cancellation requested",
    released: "handed back by its worker; queued again",
    reaped: "its worker was lost; queued again",
    redriven: "retried from the dead letters; queued",
    purged: "purged",
  }[event.type];
  return what || event.type;
}

// Status history: the job's events when the page has them (every transition, from its stream),
// else what its timestamps tell (the polling fallback, or events older than the window).
function history(job, events) {
  const transitions = (events || []).filter((e) => e.type !== "progress");
  const steps = transitions.length
    ? transitions.map((e) => [describe(e), e.at, e.type])
    : [["created", job.created_at, "queued"]];
  if (!transitions.length) {
    if (job.scheduled_at) steps.push(["scheduled for", job.scheduled_at, "scheduled"]);
    if (job.started_at) steps.push([job.attempts > 1 ? `started (attempt ${job.attempts})` : "started", job.started_at, "running"]);
    if (job.finished_at) steps.push([job.status, job.finished_at, job.status]);
  }
  return h(
    "ol",
    { class: "history", id: "job-history" },
    steps.map(([what, when, type]) => h("li", { "data-type": type }, h("time", { datetime: when }, fmtTime(when)), " ", what)),
  );
}

function progress(job) {
  const done = job.status === "succeeded";
  const percent = done ? 100 : job.progress ? job.progress.percent : null;
  if (percent === null) return null;
  const message = done ? "done" : job.progress.message || "";
  return h(
    "div",
    { class: "progress" },
    h("label", { for: "job-progress" }, "Progress"),
    h("progress", { id: "job-progress", max: "100", value: String(percent) }, `${percent.toFixed(0)}%`),
    h("span", { id: "job-progress-text" }, `${percent.toFixed(0)}%`, message ? ` · ${message}` : ""),
  );
}

async function downloadArtifact(job, button) {
  // A plain link would not carry the token: fetch it, then hand the browser a local copy.
  button.disabled = true;
  try {
    const response = await request(`/jobs/${encodeURIComponent(job.id)}/artifact`);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const url = URL.createObjectURL(await response.blob());
    const link = h("a", { href: url, download: job.result.artifact });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (e) {
    fill(document.getElementById("job-problem"), `Download failed: ${e.message}`);
  } finally {
    button.disabled = false;
  }
}

function actions(job, restart) {
  const out = [];
  if (job.status === "failed") {
    out.push(
      h("button", {
        type: "button",
        onclick: async (event) => {
          event.currentTarget.disabled = true;
          try {
            await api(`/dead-letter/${encodeURIComponent(job.id)}/retry`, { method: "POST" });
            restart();
          } catch (e) {
            fill(document.getElementById("job-problem"), e.message);
          }
        },
      }, "Retry"),
    );
  }
  if (job.result && typeof job.result === "object" && typeof job.result.artifact === "string") {
    out.push(h("button", { type: "button", onclick: (event) => downloadArtifact(job, event.currentTarget) }, `Download ${job.result.artifact}`));
  }
  return out.length ? h("div", { class: "actions" }, out) : null;
}

function render(job, events, restart) {
  const sections = [
    h("p", { class: "status-line" }, "Status ", h("span", { id: "job-status" }, statusBadge(job.status)),
      job.cancel_requested && job.status === "running" ? " (cancellation requested)" : ""),
    progress(job),
    actions(job, restart),
    facts([
      ["Task", job.task],
      ["Queue", job.queue],
      ["Priority", job.priority],
      ["Attempts", `${job.attempts} of ${job.max_attempts}`],
      ["Timeout", `${job.timeout_seconds} s`],
      ["Worker", job.worker || "—"],
      ["Idempotency key", job.idempotency_key || "—"],
    ]),
    h("section", { "aria-labelledby": "h-history" }, h("h2", { id: "h-history" }, "History"), history(job, events)),
    h("section", { "aria-labelledby": "h-args" }, h("h2", { id: "h-args" }, "Arguments"), h("div", { id: "job-args" }, json(job.args))),
  ];
  if (job.error) {
    sections.push(
      h("section", { "aria-labelledby": "h-error" }, h("h2", { id: "h-error" }, "Error"),
        facts([["Type", job.error.type], ["Message", job.error.message], ["Reason", job.error.reason || "—"]], { id: "job-error" })),
    );
  }
  if (job.result !== null && job.result !== undefined) {
    sections.push(h("section", { "aria-labelledby": "h-result" }, h("h2", { id: "h-result" }, "Result"), json(job.result)));
  }
  fill(document.getElementById("job"), sections);
}

export function start() {
  const id = decodeURIComponent(window.location.pathname.split("/").pop());
  fill(document.getElementById("job-id"), id);
  let stop = () => {};
  const restart = () => {
    stop();
    stop = live.job(id, (job, events) => render(job, events, restart));
  };
  restart();
}
