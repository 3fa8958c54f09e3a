// A small SVG line chart of (time, value) samples: no library, built with DOM calls only.
const NS = "http://www.w3.org/2000/svg";
const W = 600;
const H = 160;
const PAD = 28;
const LEFT = 44; // room for a tick like "1.5 s"

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// Consecutive samples more than gapMs apart are not joined: no line through a time with no data.
function segments(samples, gapMs) {
  const out = [];
  let current = [];
  for (const s of samples) {
    if (current.length && s.t - current[current.length - 1].t > gapMs) {
      out.push(current);
      current = [];
    }
    current.push(s);
  }
  if (current.length) out.push(current);
  return out;
}

// series: [{samples: [{t: ms, v: number}] oldest first, class?}]; windowMs: the x axis's span,
// ending now; title: the chart's text alternative; format(v): a y tick's text.
export function drawChart(container, series, { windowMs, title, format, gapMs = Infinity }) {
  const now = Date.now();
  const max = Math.max(1, ...series.flatMap((s) => s.samples.map((p) => p.v)));
  const x = (t) => LEFT + ((t - (now - windowMs)) / windowMs) * (W - LEFT - PAD);
  const y = (v) => H - PAD - (v / max) * (H - 2 * PAD);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "line-chart" });
  root.append(svg("title", {}, title));
  root.append(svg("line", { x1: LEFT, y1: H - PAD, x2: W - PAD, y2: H - PAD, class: "axis" }));
  root.append(svg("line", { x1: LEFT, y1: PAD, x2: LEFT, y2: H - PAD, class: "axis" }));
  root.append(svg("text", { x: 2, y: PAD + 4, class: "tick" }, format(max)));
  root.append(svg("text", { x: 2, y: H - PAD + 4, class: "tick" }, format(0)));
  root.append(svg("text", { x: LEFT, y: H - 6, class: "tick" }, `−${Math.round(windowMs / 60000)} min`));
  root.append(svg("text", { x: W - PAD - 20, y: H - 6, class: "tick" }, "now"));
  for (const s of series) {
    const cls = s.class ? `series ${s.class}` : "series";
    for (const part of segments(s.samples, gapMs)) {
      if (part.length === 1) {
        // A lone point (one bucket with data) is a dot, or it would not show at all.
        root.append(svg("circle", { cx: x(part[0].t).toFixed(1), cy: y(part[0].v).toFixed(1), r: 3, class: `${cls} dot` }));
      } else {
        const points = part.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
        root.append(svg("polyline", { points, class: cls }));
      }
    }
  }
  container.replaceChildren(root);
}

// One series of rates, titled with its latest value and its peak.
export function drawLine(container, samples, { windowMs, label, unit }) {
  const max = Math.max(1, ...samples.map((s) => s.v));
  const last = samples.length ? samples[samples.length - 1].v : 0;
  drawChart(container, samples.length > 1 ? [{ samples }] : [], {
    windowMs,
    title: `${label}: ${last.toFixed(1)} ${unit} now, peak ${max.toFixed(1)}`,
    format: (v) => v.toFixed(v >= 10 || v === 0 ? 0 : 1),
  });
}
