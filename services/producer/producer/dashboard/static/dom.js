// Safe DOM building: every value from the API becomes a text node or an attribute value, never
// markup. Nothing in the dashboard assigns innerHTML, so a job arg like "<script>" shows as text.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function jobHref(id) {
  return `/dashboard/jobs/${encodeURIComponent(id)}`;
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 1) return "< 1 s";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

export function fmtRate(perSecond) {
  if (perSecond === null || perSecond === undefined) return "—";
  return perSecond >= 10 ? perSecond.toFixed(0) : perSecond.toFixed(1);
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status);
}

// A definition list from [label, value] pairs; values may be nodes.
export function facts(pairs, attrs = {}) {
  return h("dl", { class: "facts", ...attrs }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}
