// Enqueue-to-start latency: how long jobs waited between becoming runnable and a worker taking them,
// as p50 and p95 per 5-second bucket.
//
// Computed here from the events the page already receives on /events, not from /metrics: the
// histogram there has fixed buckets, so a percentile read from it is only known to lie between two
// bounds, while a job's own events give its wait exactly, to the millisecond of Redis's clock (both
// ids come from the same queue's stream). A wait starts at the job's latest event with status
// `queued` (enqueued, came due, released, reaped, re-driven) or, for a job seen scheduled or backing
// off, at its due time (a promotion that comes later is waiting too); it ends at its `running` event.
// Only jobs whose start this page saw count: those already waiting when it opened are left out,
// not guessed.
import { drawChart } from "./chart.js";
import { fill, h } from "./dom.js";

export const BUCKET_MS = 5000;
const MAX_FOLLOWED = 20_000; // jobs waiting to be seen start; past it the oldest are forgotten
const REDRAW_MS = 250; // a burst of starts is drawn once
const ENDED = new Set(["succeeded", "failed", "cancelled", "purged"]);

// An event's time: its stream entry id is '<ms>-<seq>' on Redis's clock.
const entryMs = (id) => Number(String(id).split("-")[0]);

// Nearest rank: the smallest value with at least p of the values at or below it.
const percentile = (sorted, p) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];

export function fmtMs(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

function remember(map, key, value) {
  map.delete(key); // re-inserted last: Map order is the eviction order
  map.set(key, value);
  if (map.size > MAX_FOLLOWED) map.delete(map.keys().next().value);
}

// The chart in `chart` and its text alternative in `text`, over the last windowMs. Returns
// {onEvent(event), unavailable()}: feed it every /events event; call unavailable() when the page
// has no event stream (it polls), so the text says why the chart stays empty.
export function latencyChart({ chart, text, windowMs }) {
  const started = new Map(); // job id -> ms (Redis clock) its current wait started
  const dueAt = new Map(); // job id -> due ms of its scheduled or retry event
  let samples = []; // {at: ms (Redis clock) the job started, wait: ms}
  // Browser clock minus Redis clock, the smallest seen (that event's delivery delay was least): the
  // chart's x axis is the browser's "now", the events' times are Redis's; replays after a reset
  // arrive late and do not move it.
  let offset = Infinity;
  let timer = null;
  let redrawing = false; // a redraw is coming within REDRAW_MS
  let streaming = true;

  function render() {
    clearTimeout(timer);
    redrawing = false;
    const now = Date.now();
    samples = samples.filter((s) => s.at + offset >= now - windowMs);
    const buckets = new Map();
    for (const s of samples) {
      const b = Math.floor((s.at + offset) / BUCKET_MS);
      if (!buckets.has(b)) buckets.set(b, []);
      buckets.get(b).push(s.wait);
    }
    const p50 = [];
    const p95 = [];
    let latest = null;
    for (const [b, waits] of [...buckets].sort((x, y) => x[0] - y[0])) {
      waits.sort((x, y) => x - y);
      const t = Math.min(now, (b + 1) * BUCKET_MS); // a bucket's point at its end (or now, if still open)
      p50.push({ t, v: percentile(waits, 0.5) });
      p95.push({ t, v: percentile(waits, 0.95) });
      latest = { end: (b + 1) * BUCKET_MS, waits };
    }
    const minutes = Math.round(windowMs / 60_000);
    const title = latest
      ? `Enqueue-to-start latency per 5 s, last ${minutes} min: latest p50 ${fmtMs(percentile(latest.waits, 0.5))}, p95 ${fmtMs(percentile(latest.waits, 0.95))}`
      : `Enqueue-to-start latency per 5 s, last ${minutes} min: no job started`;
    drawChart(chart, [{ samples: p50 }, { samples: p95, class: "alt" }], { windowMs, title, format: fmtMs, gapMs: BUCKET_MS });
    if (latest) {
      const all = samples.map((s) => s.wait).sort((x, y) => x - y);
      const stat = (field, waits, p) => {
        const ms = percentile(waits, p);
        return h("span", { "data-field": field, "data-ms": ms }, fmtMs(ms));
      };
      const jobs = (n) => `${n} job${n === 1 ? "" : "s"}`;
      fill(
        text,
        `Latest 5 s (to ${new Date(latest.end).toLocaleTimeString()}): p50 `, stat("p50", latest.waits, 0.5),
        ", p95 ", stat("p95", latest.waits, 0.95), ` over ${jobs(latest.waits.length)}. `,
        `Last ${minutes} min: p50 `, stat("window-p50", all, 0.5), ", p95 ", stat("window-p95", all, 0.95),
        ` over ${jobs(all.length)}.`,
      );
    } else if (streaming) fill(text, `No job has started in the last ${minutes} min (counting jobs enqueued since this page opened).`);
    else fill(text, "Not available: latency is computed from the event stream, and this page is polling without one.");
    // Redrawn at least once a bucket, so old points slide out with no job starting.
    timer = setTimeout(render, BUCKET_MS);
  }

  // A throttle, not a debounce: under a steady stream of starts a debounce would never draw.
  function soon() {
    if (redrawing) return;
    redrawing = true;
    clearTimeout(timer);
    timer = setTimeout(render, REDRAW_MS);
  }

  function onEvent(event) {
    const at = entryMs(event.id);
    if (!Number.isFinite(at) || !event.job_id) return;
    offset = Math.min(offset, Date.now() - at);
    const job = event.job_id;
    if (event.type === "running") {
      const from = started.get(job);
      started.delete(job);
      dueAt.delete(job);
      if (from !== undefined) {
        samples.push({ at, wait: Math.max(0, at - from) });
        soon();
      }
    } else if (event.status === "queued") {
      const due = dueAt.get(job);
      dueAt.delete(job);
      remember(started, job, due !== undefined && due < at ? due : at);
    } else if (event.status === "scheduled") {
      started.delete(job);
      if (Number.isFinite(event.due)) remember(dueAt, job, event.due);
    } else if (ENDED.has(event.status)) {
      started.delete(job);
      dueAt.delete(job);
    }
  }

  render();
  return {
    onEvent,
    unavailable() {
      streaming = false;
      render();
    },
  };
}
