// Live data for the pages. Today every feed polls the JSON API; the producer's /events stream (SSE)
// will replace the polling inside this module, and the pages, which only call these functions and
// get the same documents, will not change.
import { api, ApiError } from "./api.js";
import { fill } from "./dom.js";

const POLL_MS = 1000;

function setStatus(text) {
  const el = document.getElementById("live-status");
  if (el && el.textContent !== text) fill(el, text);
}

// Calls onData(doc) with the document at `path` now and whenever it may have changed, until the
// returned stop() is called or until(doc) is true. Errors are shown in the footer and retried.
export function watch(path, onData, { until = () => false, intervalMs = POLL_MS } = {}) {
  let stopped = false;
  let timer = null;
  async function tick() {
    if (stopped) return;
    let wait = intervalMs;
    if (document.hidden) {
      // A background tab asks nothing; it catches up when shown again.
      timer = setTimeout(tick, intervalMs);
      return;
    }
    try {
      const doc = await api(path);
      if (stopped) return;
      setStatus("Live");
      onData(doc);
      if (until(doc)) {
        stopped = true;
        return;
      }
    } catch (error) {
      // Over the rate limit: wait as long as the producer says (its Retry-After) before asking again.
      const retryAfter = error instanceof ApiError ? Number(error.headers.get("retry-after")) : 0;
      if (retryAfter > 0) wait = retryAfter * 1000;
      setStatus(`Connection problem: ${error.message}; retrying`);
    }
    timer = setTimeout(tick, wait);
  }
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

export const live = {
  queues: (onData) => watch("/queues", onData),
  workers: (onData) => watch("/workers", onData),
  // Stops by itself once the job has ended: nothing changes after that.
  job: (id, onData) => watch(`/jobs/${encodeURIComponent(id)}`, onData, { until: (j) => TERMINAL.has(j.status) }),
  deadLetters: (queue, onData) => watch(`/dead-letter?queue=${encodeURIComponent(queue)}&limit=100`, onData),
};
