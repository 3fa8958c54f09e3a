// Dead letters of one queue: retry or purge (purge asks for a confirmation first).
import { api } from "./api.js";
import { fill, fmtTime, h, jobHref } from "./dom.js";
import { live } from "./live.js";

let stop = () => {};
let confirming = null; // the job id whose purge awaits confirmation (kept across live refreshes)

function say(text) {
  fill(document.getElementById("dead-message"), text);
}

async function act(job, action) {
  try {
    if (action === "retry") {
      await api(`/dead-letter/${encodeURIComponent(job.id)}/retry`, { method: "POST" });
      say(`Job ${job.id} is back in queue ${job.queue}.`);
    } else {
      await api(`/dead-letter/${encodeURIComponent(job.id)}`, { method: "DELETE" });
      say(`Job ${job.id} was purged.`);
    }
  } catch (e) {
    say(`Could not ${action} job ${job.id}: ${e.message}`);
  }
  confirming = null;
  show(document.getElementById("dead-queue").value);
}

function buttons(job) {
  if (confirming === job.id) {
    return [
      h("button", { type: "button", class: "danger", "data-action": "confirm-purge", onclick: () => act(job, "purge") }, "Confirm purge"),
      " ",
      h("button", { type: "button", onclick: () => { confirming = null; show(document.getElementById("dead-queue").value); } }, "Cancel"),
    ];
  }
  return [
    h("button", { type: "button", "data-action": "retry", onclick: () => act(job, "retry") }, "Retry"),
    " ",
    h("button", { type: "button", "data-action": "purge", onclick: () => { confirming = job.id; render(lastPage); focusConfirm(); } }, "Purge"),
  ];
}

function focusConfirm() {
  const button = document.querySelector('[data-action="confirm-purge"]');
  if (button) button.focus();
}

let lastPage = { items: [] };

function render(page) {
  lastPage = page;
  const list = document.getElementById("dead-list");
  if (!page.items.length) {
    fill(list, h("p", { class: "muted" }, `No dead-lettered job in queue ${page.queue}.`));
    return;
  }
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.action : null;
  fill(
    list,
    h("table", {},
      h("caption", { class: "muted" }, `Queue ${page.queue}: ${page.items.length} shown`),
      h("thead", {}, h("tr", {}, ["Job", "Task", "Error", "Reason", "Attempts", "Failed at", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, page.items.map((job) =>
        h("tr", { "data-job": job.id },
          h("th", { scope: "row" }, h("a", { href: jobHref(job.id), class: "mono" }, job.id)),
          h("td", {}, job.task),
          h("td", {}, job.error ? `${job.error.type}: ${job.error.message}` : "—"),
          h("td", {}, job.error && job.error.reason ? job.error.reason : "—"),
          h("td", {}, `${job.attempts} / ${job.max_attempts}`),
          h("td", {}, fmtTime(job.finished_at)),
          h("td", { class: "actions" }, buttons(job)),
        ))),
    ),
  );
  // A live refresh rebuilds the rows: keep the keyboard where it was.
  if (focused === "confirm-purge") focusConfirm();
}

function show(queue) {
  stop();
  stop = live.deadLetters(queue, render);
}

export async function start() {
  const select = document.getElementById("dead-queue");
  const queues = await api("/queues");
  const names = queues.map((q) => q.queue);
  const wanted = new URLSearchParams(window.location.search).get("queue");
  if (!names.length) names.push("default");
  if (wanted && !names.includes(wanted)) names.push(wanted);
  fill(select, names.map((n) => h("option", { value: n }, n)));
  // Start on the asked-for queue, else on the first with dead jobs.
  const first = queues.find((q) => q.dead > 0);
  select.value = wanted || (first ? first.queue : names[0]);
  select.addEventListener("change", () => {
    confirming = null;
    const url = new URL(window.location.href);
    url.searchParams.set("queue", select.value);
    window.history.replaceState(null, "", url);
    show(select.value);
  });
  show(select.value);
}
