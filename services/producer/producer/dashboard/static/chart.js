// A small SVG line chart of (time, value) samples: no library, built with DOM calls only.
const NS = "http://www.w3.org/2000/svg";
const W = 600;
const H = 160;
const PAD = 28;

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// samples: [{t: ms, v: number}], oldest first; windowMs: the span of the x axis ending now.
export function drawLine(container, samples, { windowMs, label, unit }) {
  const now = Date.now();
  const max = Math.max(1, ...samples.map((s) => s.v));
  const x = (t) => PAD + ((t - (now - windowMs)) / windowMs) * (W - 2 * PAD);
  const y = (v) => H - PAD - (v / max) * (H - 2 * PAD);
  const last = samples.length ? samples[samples.length - 1].v : 0;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "line-chart" });
  root.append(svg("title", {}, `${label}: ${last.toFixed(1)} ${unit} now, peak ${max.toFixed(1)}`));
  root.append(svg("line", { x1: PAD, y1: H - PAD, x2: W - PAD, y2: H - PAD, class: "axis" }));
  root.append(svg("line", { x1: PAD, y1: PAD, x2: PAD, y2: H - PAD, class: "axis" }));
  root.append(svg("text", { x: 2, y: PAD + 4, class: "tick" }, max.toFixed(max >= 10 ? 0 : 1)));
  root.append(svg("text", { x: 2, y: H - PAD + 4, class: "tick" }, "0"));
  root.append(svg("text", { x: PAD, y: H - 6, class: "tick" }, `−${Math.round(windowMs / 60000)} min`));
  root.append(svg("text", { x: W - PAD - 20, y: H - 6, class: "tick" }, "now"));
  if (samples.length > 1) {
    const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(s.v).toFixed(1)}`).join(" ");
    root.append(svg("polyline", { points, class: "series" }));
  }
  container.replaceChildren(root);
}
