// The details panel (records, spans, locks, stacks) and the object list.
import { getJSON, noteProblem } from "./timeline-api.js";
import { scrollTasks } from "./timeline-data.js";
import { centerOn } from "./timeline-nav.js";
import { requestDraw } from "./timeline-render.js";
import { AXIS_H, fmtDuration, fmtOffset, fullWallClock, state, wallClock } from "./timeline-state.js";

// ---- details ----------------------------------------------------------------------------

export function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

export function dl(rows) {
  const d = el("dl");
  for (const [k, v] of rows) {
    if (v == null || v === "") continue;
    d.append(el("dt", k));
    const dd = el("dd");
    if (v instanceof Node) dd.append(v);
    else dd.textContent = String(v);
    d.append(dd);
  }
  return d;
}

export function fieldList(fields) {
  const d = el("dl", null, "fields");
  for (const f of fields) {
    d.append(el("dt", f.name));
    const dd = el("dd");
    const b = el("button", f.value, "value");
    b.title = "follow " + f.name + "=" + f.value + " across threads (" + f.type + ")";
    b.dataset.field = f.name;
    b.addEventListener("click", () => selectObject(f.name, f.value));
    dd.append(b);
    if (f.truncated) dd.append(el("span", " (truncated)", "hint"));
    d.append(dd);
  }
  return d;
}

/** The details panel says why `what` cannot be shown, and shows nothing of it. */
function panelError(what, e) {
  noteProblem(what, e);
  state.selected = null;
  const panel = document.getElementById("details");
  panel.replaceChildren(el("h3", "cannot show this " + what, "error"), el("p", e.message, "error"));
  requestDraw();
  return null;
}

export function spanLink(s) {
  const b = el("button", s.name + " #" + s.span, "span-link");
  b.addEventListener("click", () => showSpan(s.span, true));
  return b;
}

export async function showRecord(id) {
  let r;
  try {
    r = await getJSON("/records/" + id);
  } catch (e) {
    return panelError("record", e);
  }
  state.selected = { kind: "event", id };
  const panel = document.getElementById("details");
  panel.replaceChildren();
  panel.append(el("h3", r.title));
  panel.append(dl([
    ["kind", r.kind], ["level", r.level], ["target", r.target],
    ["at", r.file ? r.file + ":" + (r.line ?? "?") : null],
    ["thread", r.thread + " (tid " + r.tid + ")"], ["time", fullWallClock(r.ts)],
  ]));
  panel.append(el("h4", "fields"));
  panel.append(fieldList(r.fields));
  if (r.spans.length) {
    panel.append(el("h4", "span stack (outermost first)"));
    const ol = el("ol", null, "stack");
    for (const s of r.spans) {
      const li = el("li");
      li.append(spanLink(s));
      ol.append(li);
    }
    panel.append(ol);
  }
  requestDraw();
  return r;
}

/** A recorded lock's page: what it is, how contended, who holds and waits for it. */
export async function showLock(lock) {
  let l;
  try {
    l = await getJSON("/locks/" + lock);
  } catch (e) {
    return panelError("lock", e);
  }
  state.selected = { kind: "lock", id: lock };
  const panel = document.getElementById("details");
  panel.replaceChildren();
  panel.append(el("h3", "lock " + l.name));
  panel.append(dl([
    ["kind", l.kind], ["made at", l.place], ["taken", l.acquisitions + "×"],
    ["waited for", l.contended + "× (longest " + fmtDuration(l.max_wait_ns) + ", in all " + fmtDuration(l.total_wait_ns) + ")"],
    ["held", "longest " + fmtDuration(l.max_hold_ns) + ", in all " + fmtDuration(l.total_hold_ns)],
  ]));
  for (const [label, list] of [["held at the end by", l.holders], ["waited for at the end by", l.waiters], ["longest waits", l.longest_waits]]) {
    if (!list.length) continue;
    panel.append(el("h4", label));
    const ul = el("ul", null, "lock-parties");
    for (const p of list) {
      const li = el("li", `${p.thread}${p.shared ? " (shared)" : ""}: ${fmtDuration(p.ns)} from ${fmtOffset(p.since)}`);
      li.addEventListener("click", () => centerOn(p.since + p.ns / 2));
      ul.append(li);
    }
    panel.append(ul);
  }
  requestDraw();
  return l;
}

export async function showSpan(span, follow) {
  let s;
  try {
    s = await getJSON("/spans/" + span);
  } catch (e) {
    return panelError("span", e);
  }
  state.selected = { kind: "span", id: span };
  const panel = document.getElementById("details");
  panel.replaceChildren();
  panel.append(el("h3", "span " + s.name + " #" + s.span));
  const total = s.entries.reduce((a, e) => a + (e.e - e.b), 0);
  const threads = [...new Set(s.entries.map((e) => e.thread))];
  panel.append(dl([
    ["level", s.level], ["target", s.target], ["at", s.file ? s.file + ":" + (s.line ?? "?") : null],
    ["created on", s.created_on], ["entered", s.entries.length + "× on " + threads.join(", ")],
    ["time inside", fmtDuration(total)],
    ["first entry", s.entries.length ? fmtDuration(s.entries[0].e - s.entries[0].b) : null],
  ]));
  if (s.parent) panel.append(dl([["parent", spanLink(s.parent)]]));
  if (s.stack && s.stack.length) {
    panel.append(el("h4", "span stack when first entered (outermost first)"));
    const ol = el("ol", null, "stack");
    for (const x of s.stack) {
      const li = el("li");
      li.append(spanLink(x));
      ol.append(li);
    }
    panel.append(ol);
  }
  panel.append(el("h4", "fields"));
  panel.append(fieldList(s.fields));
  for (const [label, list] of [["follows", s.follows], ["followed by", s.followed_by]]) {
    if (list.length) {
      panel.append(el("h4", label));
      for (const l of list) panel.append(spanLink(l));
    }
  }
  const b = el("button", follow ? "stop following" : "follow this span across threads", "follow");
  b.addEventListener("click", () => {
    state.follow = state.follow && state.follow.span === s.span ? null : s;
    showSpan(s.span, !!state.follow);
  });
  panel.append(el("br"), b);
  if (follow) {
    state.follow = s;
    // The spans this one follows from, or that follow from it, for their arrows.
    const links = [...s.follows.map((l) => ["follows", l]), ...s.followed_by.map((l) => ["followed_by", l])];
    // A linked span that cannot be read is left out, not drawn from an error.
    const linked = await Promise.all(links.slice(0, 16).map(async ([dir, l]) => {
      try {
        return { dir, span: await getJSON("/spans/" + l.span) };
      } catch (e) {
        noteProblem("span", e);
        return null;
      }
    }));
    s.linked = linked.filter((x) => x != null);
  }
  requestDraw();
  return s;
}

export async function selectObject(field, value) {
  const sec = document.getElementById("object");
  let o;
  try {
    o = await getJSON("/object", { field, value });
  } catch (e) {
    noteProblem("object", e);
    state.object = null;
    sec.hidden = false;
    document.getElementById("object-title").textContent = `${field} = ${value}: cannot be followed: ${e.message}`;
    document.querySelector("#object-list tbody").replaceChildren();
    requestDraw();
    return null;
  }
  state.object = o;
  sec.hidden = false;
  // Counted by the server over every record that carries it, not only those listed.
  document.getElementById("object-title").textContent =
    `${field} = ${value}: ${o.total} records on ${o.threads} thread(s), ${o.handovers} hand-over(s)` +
    (o.tasks ? `; in ${o.tasks} task(s), ${o.task_handovers} hand-over(s) between tasks` : "") +
    (o.truncated ? ` (the newest ${o.records.length} listed)` : "");
  const body = document.querySelector("#object-list tbody");
  body.replaceChildren();
  // In the task view, the list names each record's task and marks hand-overs between tasks.
  const byTask = state.mode === "tasks";
  document.querySelector("#object-list thead th:nth-child(4)").textContent = byTask ? "task" : "span";
  for (const r of o.records) {
    const handover = byTask ? r.task_handover : r.handover;
    const tr = el("tr", null, handover ? "handover" : "");
    tr.dataset.id = r.id;
    // The axis's clock (UTC, to the ns), and the offset into the recording beside it.
    tr.append(el("td", wallClock(r.t, 1)), el("td", fmtOffset(r.t), "offset"));
    tr.append(el("td", r.thread), el("td", (byTask ? r.task_label : r.span) || ""), el("td", r.title));
    tr.append(el("td", handover ? "⇄ from " + (byTask ? r.from_task : r.from) : "", "handover-mark"));
    tr.addEventListener("click", () => { centerOn(r.t); showRecord(r.id); });
    body.append(tr);
  }
  revealObjectTasks();
  // Bring the accesses inside the current view to the top of the list.
  const firstInView = o.records.findIndex((r) => r.t >= state.view.start && r.t <= state.view.end);
  if (firstInView >= 0) {
    const row = body.children[firstInView];
    document.getElementById("object").scrollTop = row.offsetTop - 48;
  }
  requestDraw();
  return o;
}

/** In the task view, scrolls the selected object's last hand-over between tasks (the end
 * of a flight recording is where the trouble is; else its first task) into view, with the
 * task it came from. */
export function revealObjectTasks() {
  const o = state.object;
  if (!o || state.mode !== "tasks" || !state.tasks) return;
  // The last hand-over in the view (the demo opens the view on its failure), else the last
  // record in it. The list holds the object's newest records only: when none of them lies
  // in the view, the lanes stay where they are rather than jump to unrelated ones.
  const inView = (r) => r.t >= state.view.start && r.t <= state.view.end;
  const k = o.records.findLastIndex((r) => r.task_handover && inView(r));
  const lanes = [];
  if (k > 0) lanes.push(o.records[k - 1].task, o.records[k].task);
  else {
    const last = o.records.findLast(inView);
    if (last) lanes.push(last.task);
  }
  revealTasks(lanes);
}

/** Scrolls the task lanes so that the first of `tasks` (task ids) is at the top. */
export function revealTasks(tasks) {
  if (state.mode !== "tasks" || !state.tasks) return;
  const pos = tasks.map((t) => state.taskPos.get(t)).filter((p) => p != null);
  if (!pos.length) return;
  const top = state.lanesY[Math.min(...pos)][0] - AXIS_H - 8;
  const scroller = document.getElementById("timeline-wrap");
  scroller.scrollTop = Math.max(0, top);
  scrollTasks();
}

// ---- native stacks ----------------------------------------------------------------------

/** The details panel for native stacks: the trigger's when `withTrigger`, then each stack,
 * innermost frame first. */
export function showStacks(stacks, withTrigger) {
  const panel = document.getElementById("details");
  panel.replaceChildren();
  const t = state.meta.trigger;
  if (withTrigger && t) {
    panel.append(el("h3", "⚡ " + t.reason));
    panel.append(dl([["what", t.description], ["message", t.message], ["thread", t.thread]]));
  } else {
    panel.append(el("h3", "native stack"));
  }
  if (!stacks.length) panel.append(el("p", "No native stacks in this dump."));
  for (const s of stacks) {
    const box = el("div", null, "stack");
    box.dataset.tid = s.tid;
    box.append(el("h4", s.headline));
    if (!s.answered) box.classList.add("unanswered");
    const ol = el("ol", null, "frames");
    ol.start = 0;
    for (const f of s.frames) ol.append(el("li", f));
    box.append(ol);
    if (s.note) box.append(el("p", s.note, "note"));
    panel.append(box);
  }
}

/** The stacks the trigger is about: the crashing thread's, the stalled threads', or all. */
export function showTriggerStacks() {
  const all = state.meta.stacks || [];
  const t = state.meta.trigger;
  const mine = all.filter((s) => s.reason === (t && t.reason));
  showStacks(mine.length ? mine : all, true);
}

window.addEventListener("flightrec:stack", (e) => {
  const s = (state.meta.stacks || []).find((x) => x.tid === e.detail);
  if (s) showStacks([s], false);
});
