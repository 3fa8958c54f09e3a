// The enqueue form, built from GET /tasks (each task's JSON Schema). Values go to POST /jobs as
// typed; the API validates them, and each 422 error is shown next to the field its `loc` names.
import { api, ApiError } from "./api.js";
import { fill, h, jobHref } from "./dom.js";

const OPTIONS = [
  { name: "queue", schema: { type: "string", title: "Queue", description: "Leave empty for the task's own queue" } },
  // No default here: an empty field leaves the option to the task (GET /tasks), shown as a placeholder.
  { name: "priority", schema: { type: "integer", title: "Priority", description: "0-9, 9 most urgent (the task's own when empty)" } },
  { name: "delay_seconds", schema: { type: "number", title: "Delay (seconds)", description: "Run no earlier than this many seconds from now" } },
  { name: "max_attempts", schema: { type: "integer", title: "Max attempts", description: "Executions before dead-lettering (the task's default when empty)" } },
];

// The schema of a property, with Optional[...] (anyOf with null) and $ref resolved.
function resolve(schema, root) {
  let s = schema;
  if (s.$ref && root.$defs) s = { ...root.$defs[s.$ref.split("/").pop()], ...s };
  if (s.anyOf) {
    const options = s.anyOf.filter((o) => o.type !== "null");
    if (options.length === 1) s = { ...s, ...resolve(options[0], root) };
  }
  return s;
}

function kind(s) {
  if (s.enum) return "enum";
  if (s.type === "boolean") return "boolean";
  if (s.type === "integer" || s.type === "number") return "number";
  if (s.type === "string") return "string";
  return "json"; // arrays, objects, anything else: typed as JSON
}

function hintOf(s) {
  const parts = [];
  if (s.description) parts.push(s.description);
  if (s.format === "date-time") parts.push("ISO 8601, e.g. 2026-01-31T09:00:00Z");
  if (kind(s) === "json") parts.push(`JSON ${s.type || "value"}`);
  return parts.join(". ");
}

// One labelled input; its id is "f-" + the path the API's loc names (args.seconds, priority...).
function field(path, s, required) {
  const id = `f-${path.join("-")}`;
  const k = kind(s);
  const hint = hintOf(s);
  const described = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" ");
  let input;
  const common = { id, name: path.join("."), "data-kind": k, "aria-describedby": described, "aria-required": required ? "true" : null };
  if (k === "enum") {
    input = h("select", common, required ? null : h("option", { value: "" }, "—"), s.enum.map((v) => h("option", { value: String(v) }, String(v))));
    if (s.default !== undefined && s.default !== null) input.value = String(s.default);
  } else if (k === "boolean") {
    input = h("input", { ...common, type: "checkbox", checked: s.default === true });
  } else if (k === "json") {
    input = h("textarea", { ...common, rows: "3", spellcheck: "false" });
    if (s.default !== undefined && s.default !== null) input.value = JSON.stringify(s.default);
  } else {
    // Text, not type=number: the API judges the value, so its message is the one shown.
    input = h("input", { ...common, type: "text", autocomplete: "off", inputmode: k === "number" ? "decimal" : null });
    if (s.default !== undefined && s.default !== null) input.value = String(s.default);
  }
  const title = s.title || path[path.length - 1];
  return h(
    "div",
    { class: k === "boolean" ? "field check" : "field", "data-path": path.join(".") },
    h("label", { for: id }, title, required ? h("span", { class: "req" }, " (required)") : null),
    input,
    hint ? h("p", { id: `${id}-hint`, class: "hint" }, hint) : null,
    h("p", { id: `${id}-error`, class: "error" }),
  );
}

// The value to send, or undefined to leave the key out (an empty optional field).
function valueOf(input) {
  const k = input.dataset.kind;
  if (k === "boolean") return input.checked;
  const raw = input.value;
  if (raw.trim() === "") return undefined;
  if (k === "number") {
    const n = Number(raw);
    return Number.isFinite(n) ? n : raw; // not a number: sent as typed, the API says why
  }
  if (k === "json") {
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  }
  return raw;
}

function collect(form) {
  const body = { task: form.querySelector("#f-task").value, args: {} };
  for (const input of form.querySelectorAll("[data-kind]")) {
    const path = input.name.split(".");
    const value = valueOf(input);
    if (value === undefined) continue;
    if (path[0] === "args") body.args[path[1]] = value;
    else body[path[0]] = value;
  }
  return body;
}

function clearErrors(form) {
  for (const el of form.querySelectorAll(".error")) fill(el);
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

// errors[].loc is ["body", "args", "seconds"] or ["body", "priority"]: the longest prefix that names
// a field gets the message; the rest go above the button.
function showErrors(form, errors) {
  const general = [];
  let first = null;
  for (const error of errors) {
    const loc = error.loc[0] === "body" ? error.loc.slice(1) : error.loc;
    let target = null;
    for (let n = loc.length; n > 0 && !target; n--) target = form.querySelector(`[id="f-${loc.slice(0, n).join("-")}"]`);
    if (!target) {
      general.push(error.msg);
      continue;
    }
    const box = document.getElementById(`${target.id}-error`);
    fill(box, box.textContent ? `${box.textContent}; ${error.msg}` : error.msg);
    target.setAttribute("aria-invalid", "true");
    first = first || target;
  }
  fill(document.getElementById("enqueue-problem"), general.join("; "));
  if (first) first.focus();
}

export async function start() {
  const form = document.getElementById("enqueue-form");
  const select = document.getElementById("f-task");
  const tasks = await api("/tasks");
  fill(select, tasks.map((t) => h("option", { value: t.name }, t.name)));
  const wanted = new URLSearchParams(window.location.search).get("task");
  if (wanted && tasks.some((t) => t.name === wanted)) select.value = wanted;

  const options = document.getElementById("option-fields");
  fill(options, h("legend", {}, "Options"), OPTIONS.map((o) => field([o.name], o.schema, false)));

  const build = () => {
    const task = tasks.find((t) => t.name === select.value);
    fill(document.getElementById("f-task-hint"), task.description ? `${task.description}. ` : "", `Queue: ${task.queue}.`);
    for (const name of ["queue", "priority", "max_attempts"]) {
      document.getElementById(`f-${name}`).placeholder = task[name] === null || task[name] === undefined ? "" : String(task[name]);
    }
    const schema = task.args_schema;
    const required = new Set(schema.required || []);
    const props = Object.entries(schema.properties || {});
    fill(
      document.getElementById("args-fields"),
      h("legend", {}, "Arguments"),
      props.length ? props.map(([name, s]) => field(["args", name], resolve(s, schema), required.has(name))) : h("p", { class: "muted" }, "This task takes no arguments."),
    );
    clearErrors(form);
  };
  select.addEventListener("change", build);
  build();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const job = await api("/jobs", { method: "POST", body: collect(form) });
      window.location.assign(jobHref(job.id));
    } catch (e) {
      if (e instanceof ApiError && e.problem.errors) showErrors(form, e.problem.errors);
      else fill(document.getElementById("enqueue-problem"), e.message);
    } finally {
      button.disabled = false;
    }
  });
}
