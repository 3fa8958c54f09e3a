// Live data for the pages, driven by the producer's Server-Sent Events.
//
// EventSource cannot send the Authorization header the API asks for, so the streams are read with
// fetch (the same request() as every call, token included) and parsed here. One /events stream per
// page says *when* something changed; the pages' documents still come from the JSON API, fetched
// again when an event arrives (coalesced), plus a slow refresh for what has no events (worker
// heartbeats, rates falling to zero). A job page follows /jobs/{id}/events: every transition for its
// history, every progress report for its bar. A stream that drops resumes with Last-Event-ID; when
// streaming does not work at all (three failures in a row, or a proxy that answers something else)
// the page falls back to polling, as before.
import { api, ApiError, request } from "./api.js";
import { fill } from "./dom.js";

const POLL_MS = 1000; // the fallback's interval
const IDLE_REFRESH_MS = 5000; // with events flowing, documents are refreshed at least this often
const MIN_GAP_MS = 300; // ...and at most this often, however many events arrive
const FAILURES_BEFORE_FALLBACK = 3;

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

function setStatus(text) {
  const el = document.getElementById("live-status");
  if (el && el.textContent !== text) fill(el, text);
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Reads a text/event-stream body, calling onFrame({id, event, data}) per frame; returns at its end.
async function readFrames(response, onFrame) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let frame = {};
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, "");
      buffer = buffer.slice(nl + 1);
      if (line === "") {
        if (frame.data !== undefined || frame.event) onFrame(frame);
        frame = {};
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        frame[field] = field === "data" && frame.data !== undefined ? `${frame.data}\n${text}` : text;
      }
    }
  }
}

// Follows an SSE path: onEvent(doc) per event, onReset() when the server says events were lost,
// onEnd() when the server ends the stream (a job's, once it is over). Reconnects with Last-Event-ID.
// onFallback() is called (and following stops) when streaming does not work. Returns stop().
export function follow(path, { onEvent, onReset = () => {}, onEnd = () => {}, onFallback = () => {} }) {
  const controller = new AbortController();
  let stopped = false;
  let lastId = null;
  let failures = 0;
  (async () => {
    while (!stopped) {
      try {
        const headers = { Accept: "text/event-stream" };
        if (lastId) headers["Last-Event-ID"] = lastId;
        const response = await request(path, { headers, signal: controller.signal });
        const type = response.headers.get("content-type") || "";
        if (!response.ok || !type.startsWith("text/event-stream")) {
          const doc = type.includes("json") ? await response.json() : null;
          throw new ApiError(response.status, doc, response.headers);
        }
        setStatus("Live");
        failures = 0;
        await readFrames(response, (frame) => {
          if (frame.id) lastId = frame.id;
          if (frame.event === "reset") onReset();
          else if (frame.data !== undefined) onEvent(JSON.parse(frame.data));
        });
        if (stopped) return;
        onEnd();
        return;
      } catch (error) {
        if (stopped) return;
        failures += 1;
        const client = error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429;
        if (client || failures >= FAILURES_BEFORE_FALLBACK) {
          stopped = true;
          onFallback(error);
          return;
        }
        setStatus(`Connection problem: ${error.message}; reconnecting`);
        await delay(1000 * failures);
      }
    }
  })();
  return () => {
    stopped = true;
    controller.abort();
  };
}

// Polling, the fallback: onData(doc) with the document at `path` now and every intervalMs, until
// stop() or until(doc). Errors are shown in the footer and retried (after Retry-After on a 429).
export function watch(path, onData, { until = () => false, intervalMs = POLL_MS } = {}) {
  let stopped = false;
  let timer = null;
  async function tick() {
    if (stopped) return;
    let wait = intervalMs;
    if (document.hidden) {
      timer = setTimeout(tick, intervalMs); // a background tab asks nothing; it catches up when shown
      return;
    }
    try {
      const doc = await api(path);
      if (stopped) return;
      onData(doc);
      if (until(doc)) {
        stopped = true;
        return;
      }
    } catch (error) {
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

// A document fetched again when poked (at most every MIN_GAP_MS) and every idleMs regardless.
function refresher(path, onData, idleMs) {
  let stopped = false;
  let timer = null;
  let last = 0;
  let loading = false;
  let again = false;
  async function load() {
    timer = null;
    if (stopped) return;
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    last = Date.now();
    try {
      const doc = await api(path);
      if (!stopped) onData(doc);
    } catch (error) {
      setStatus(`Connection problem: ${error.message}; retrying`);
    } finally {
      loading = false;
    }
    if (again) {
      again = false;
      poke();
    } else schedule(idleMs);
  }
  function schedule(ms) {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(load, ms);
  }
  function poke() {
    if (!loading) schedule(Math.max(0, last + MIN_GAP_MS - Date.now()));
    else again = true;
  }
  load();
  return {
    poke,
    setIdle(ms) {
      idleMs = ms;
      schedule(ms);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

// The page's one /events stream, shared by every document that changes with jobs.
const listeners = new Set();
let stopChanges = null;
let polling = false;

function onChange(listener) {
  listeners.add(listener);
  if (!stopChanges && !polling) {
    stopChanges = follow("/events", {
      onEvent: (event) => listeners.forEach((l) => l.poke(event)),
      onReset: () => listeners.forEach((l) => l.poke(null)),
      onEnd: () => listeners.forEach((l) => l.fallback()),
      onFallback: () => {
        polling = true;
        setStatus("Live (polling: the event stream is unavailable)");
        listeners.forEach((l) => l.fallback());
      },
    });
  } else if (polling) listener.fallback();
  return () => listeners.delete(listener);
}

// A document kept fresh by events (and by a slow refresh); by polling when events are unavailable.
function changing(path, onData) {
  const doc = refresher(path, onData, IDLE_REFRESH_MS);
  const off = onChange({ poke: () => doc.poke(), fallback: () => doc.setIdle(POLL_MS) });
  return () => {
    off();
    doc.stop();
  };
}

// A job: onData(job, events) with its document and the events seen so far (its history), again at
// every event (the document refetched, coalesced; progress applied at once). Stops when it ends.
function followJob(id, onData) {
  const path = `/jobs/${encodeURIComponent(id)}`;
  const events = [];
  let job = null;
  let stopStream = () => {};
  const doc = refresher(path, (fresh) => {
    job = fresh;
    onData(job, events);
  }, 60_000);
  stopStream = follow(`${path}/events`, {
    onEvent: (event) => {
      events.push(event);
      if (job) {
        // Shown at once; the refetch brings the rest (attempts, worker, result, error).
        job = { ...job, status: event.status };
        if (event.type === "progress") job.progress = { percent: event.percent, message: event.message || null };
        onData(job, events);
      }
      if (event.type !== "progress") doc.poke();
    },
    onReset: () => events.splice(0, events.length),
    onEnd: async () => {
      // Over: one last read for its final document (result, error), then nothing more to follow.
      doc.stop();
      try {
        onData(await api(path), events);
      } catch (error) {
        setStatus(`Connection problem: ${error.message}`);
      }
    },
    onFallback: () => {
      doc.stop();
      stopStream = watch(path, (fresh) => onData(fresh, events), { until: (j) => TERMINAL.has(j.status) });
    },
  });
  return () => {
    doc.stop();
    stopStream();
  };
}

export const live = {
  queues: (onData) => changing("/queues", onData),
  workers: (onData) => changing("/workers", onData),
  // Each event of the page's one /events stream as it arrives (no second stream); onGone() when
  // there will be none (the stream is unavailable or ended, and the page polls).
  events: (onEvent, onGone) => onChange({ poke: (event) => event && onEvent(event), fallback: onGone }),
  job: followJob,
  deadLetters: (queue, onData) => changing(`/dead-letter?queue=${encodeURIComponent(queue)}&limit=100`, onData),
};
