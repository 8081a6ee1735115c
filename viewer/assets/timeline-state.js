// The timeline of one dump. The server holds the decoded dump; this page asks it only for
// what the view needs and draws that on a canvas. Pan and zoom never wait for the network:
// they redraw at once from what the page holds (the window around the view, asked for with
// a view's width of margin on each side, and an overview of the whole recording as the
// coarser level), and the server's answer for the new view refines the drawing when it
// comes. Every string from the dump is drawn with fillText or set with textContent: nothing
// from a dump is ever parsed as HTML.

export const dumpId = location.pathname.split("/").pop();
export const api = (path, params) => {
  const q = params ? "?" + new URLSearchParams(params).toString() : "";
  return "/api/dumps/" + encodeURIComponent(dumpId) + path + q;
};

export const LEVEL_COLOURS = { 1: "#9aa0a6", 2: "#2e9d5b", 3: "#2f6fde", 4: "#e08a00", 5: "#d0312d" };
export const AXIS_H = 24;
export const MIN_MAIN_H = 260; // px: room for the details panel however few lanes there are
export const RESERVED_BELOW = 170; // px kept below the timeline for the object list and the footer
export const EVENT_ROW = 14;
export const DEPTH_H = 14;
export const LANE_PAD = 6;
// Bar flags, as the server defines them (meta.constants); set when the meta arrives.
export const FLAGS = { startsBeforeData: 0, openAtEnd: 0 };

export const canvas = document.getElementById("canvas");
export const ctx = canvas.getContext("2d");
export const wrap = document.getElementById("canvas-wrap");

export const state = {
  meta: null,
  origin: 0n,
  view: { start: 0, end: 1 },
  data: null, // last window answer
  dataReq: null, // what it answers: {start, end, width, filters}
  overview: null, // the whole recording at the canvas's width (the coarser level)
  overviewReq: null,
  inputAt: null, // when the input being answered by the next draw happened (ms)
  frames: [], // ms from each input to its redraw
  lastInput: null, // when the latest pan or zoom input happened (ms)
  refines: [], // ms from an input to the drawing of the server's answer for its view
  lanesY: [], // per lane: [top, height]
  collapsed: new Set(), // processes (of several opened together) whose lanes are folded
  drawn: [], // hit-test items: {x, y, w, h, kind, id | span}
  selected: null, // {kind: "event"|"span", id}
  object: null, // {field, value, records, byId}
  follow: null, // span answer being followed
  ruler: null, // {a, b} relative ns
  hits: [],
  hitIndex: -1,
  pending: 0,
  renders: 0,
  firstRenderMs: null,
  settledWaiters: [],
  /** Waiting for recordings opened together to be read (see `awaitLoaded`). */
  loadedWaiters: [],
  fetchSeq: 0,
  // The task view: one lane per request or task, laid out from the task list and drawn
  // (and asked for) only where on screen.
  mode: "threads", // or "tasks"
  tasks: null, // the task list answer's lanes, in `taskOrder`
  taskOrder: "start",
  taskPos: new Map(), // task number -> its lane's position
  scrollY: 0, // px the task lanes are scrolled by
  scrolls: [], // ms to redraw after each scroll of the task lanes
};

/** The lanes of the current view: threads (meta.lanes) or tasks. */
export function currentLanes() {
  return state.mode === "tasks" ? state.tasks || [] : state.meta.lanes;
}

/** Height of a folded process's one remaining row. */
export const GROUP_H = 20;

/** A thread lane of a folded process: not drawn (its group's first lane shows the fold). */
export function laneHidden(i) {
  if (state.mode === "tasks") return false;
  const l = state.meta.lanes[i];
  return l != null && l.process != null && state.collapsed.has(l.process);
}

/** The first lane of its process's group (where the group's toggle goes). */
function groupStart(lanes, i) {
  return lanes[i].process != null && (i === 0 || lanes[i - 1].process !== lanes[i].process);
}

/** Folds or unfolds process `p`'s lanes. */
export function toggleProcess(p) {
  if (state.collapsed.has(p)) state.collapsed.delete(p);
  else state.collapsed.add(p);
  window.dispatchEvent(new CustomEvent("flightrec:relayout"));
}

/** A lane's top on the canvas. */
export function laneTop(i) {
  return state.lanesY[i][0] - state.scrollY;
}

/** The lanes at least partly on screen: [first, last). */
export function visibleLanes() {
  const ys = state.lanesY;
  if (state.mode !== "tasks") return [0, ys.length];
  const top = state.scrollY + AXIS_H;
  const bottom = state.scrollY + wrap.parentElement.clientHeight;
  let lo = 0, hi = ys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ys[mid][0] + ys[mid][1] <= top) lo = mid + 1; else hi = mid;
  }
  let last = lo;
  while (last < ys.length && ys[last][0] < bottom) last++;
  return [lo, last];
}

// ---- time formatting -------------------------------------------------------------------

export function wallClock(t, stepNs) {
  const ns = state.origin + BigInt(Math.round(t));
  const ms = ns / 1000000n;
  const d = new Date(Number(ms));
  const hms = d.toISOString().slice(11, 23); // HH:MM:SS.mmm
  const sub = ns % 1000000n;
  if (stepNs >= 1e6) return hms;
  const micros = (sub / 1000n).toString().padStart(3, "0");
  if (stepNs >= 1e3) return hms + " " + micros;
  const nanos = (sub % 1000n).toString().padStart(3, "0");
  return hms + " " + micros + " " + nanos;
}

export function fullWallClock(nsString) {
  const ns = BigInt(nsString);
  const d = new Date(Number(ns / 1000000n));
  const sub = (ns % 1000000n).toString().padStart(6, "0");
  return d.toISOString().slice(0, 23).replace("T", " ") + sub + " UTC";
}

/** A time in the recording, to the nanosecond: "+10.403 215 ms". */
export function fmtOffset(ns) {
  const ms = Math.floor(ns / 1e6);
  const rest = String(Math.round(ns - ms * 1e6)).padStart(6, "0");
  return "+" + ms + "." + rest.slice(0, 3) + " " + rest.slice(3) + " ms";
}

export function fmtDuration(ns) {
  const a = Math.abs(ns);
  if (a < 1e3) return ns.toFixed(0) + " ns";
  if (a < 1e6) return (ns / 1e3).toFixed(a < 1e4 ? 3 : 1) + " µs";
  if (a < 1e9) return (ns / 1e6).toFixed(a < 1e7 ? 3 : 1) + " ms";
  return (ns / 1e9).toFixed(3) + " s";
}

// ---- geometry ---------------------------------------------------------------------------

export function width() { return canvas.clientWidth; }
export function xOf(t) { return ((t - state.view.start) / (state.view.end - state.view.start)) * width(); }
export function tOf(x) { return state.view.start + (x / width()) * (state.view.end - state.view.start); }

export function layout() {
  if (state.mode === "tasks") return layoutTasks();
  state.scrollY = 0;
  canvas.style.position = "";
  wrap.style.height = "";
  const lanes = state.meta.lanes;
  let y = AXIS_H;
  state.lanesY = lanes.map((l, i) => {
    let h = LANE_PAD + EVENT_ROW + Math.max(1, l.depth) * DEPTH_H + LANE_PAD;
    if (laneHidden(i)) h = groupStart(lanes, i) ? GROUP_H : 0;
    const r = [y, h];
    y += h;
    return r;
  });
  // The timeline is as tall as its lanes (up to what the window allows; then it scrolls),
  // so what follows it (the object list) starts right below the last lane.
  const main = document.getElementById("main");
  const room = Math.max(MIN_MAIN_H, window.innerHeight - main.getBoundingClientRect().top - RESERVED_BELOW);
  main.style.height = Math.max(MIN_MAIN_H, Math.min(y + 10, room)) + "px";
  const total = Math.max(y + 10, wrap.clientHeight);
  sizeCanvas(total);
  const labels = document.getElementById("labels");
  labels.style.height = "";
  labels.style.position = "";
  labels.replaceChildren();
  const several = (state.meta.processes || []).length > 1;
  lanes.forEach((l, i) => {
    const div = document.createElement("div");
    div.className = "lane-label";
    div.style.height = state.lanesY[i][1] + "px";
    if (several && groupStart(lanes, i)) {
      // The process's fold toggle, on its first lane.
      const p = state.meta.processes[l.process];
      const folded = state.collapsed.has(l.process);
      const t = document.createElement("button");
      t.className = "fold";
      t.dataset.process = l.process;
      const n = lanes.filter((x) => x.process === l.process).length;
      t.textContent = folded ? `▸ ${p.label} (${n} threads)` : "▾";
      t.title = folded ? "Show this process's threads" : `Fold ${p.label}'s ${n} threads`;
      t.addEventListener("click", () => toggleProcess(l.process));
      div.append(t);
      if (folded) {
        div.classList.add("folded");
        labels.appendChild(div);
        return;
      }
    } else if (laneHidden(i)) {
      div.hidden = true;
      labels.appendChild(div);
      return;
    }
    const name = document.createElement("span");
    name.textContent = l.name + " ";
    const tid = document.createElement("span");
    tid.className = "tid";
    tid.textContent = l.tid;
    div.append(name, tid);
    const stack = (state.meta.stacks || []).find((s) => s.tid === l.tid);
    if (stack) {
      // Its native stack, in the details panel.
      const b = document.createElement("button");
      b.className = "stack-link";
      b.textContent = stack.answered ? "stack" : "no stack";
      b.title = stack.headline;
      b.addEventListener("click", () =>
        window.dispatchEvent(new CustomEvent("flightrec:stack", { detail: l.tid })));
      div.appendChild(b);
    }
    if (l.overwritten > 0) {
      const lost = document.createElement("span");
      lost.className = "lost";
      lost.textContent = l.overwritten + " older records overwritten";
      div.appendChild(lost);
    }
    div.title = l.name + " (tid " + l.tid + ")";
    labels.appendChild(div);
  });
}

function sizeCanvas(cssHeight) {
  const dpr = window.devicePixelRatio || 1;
  canvas.style.height = cssHeight + "px";
  canvas.style.width = "100%";
  canvas.width = Math.floor(wrap.clientWidth * dpr);
  canvas.height = Math.floor(cssHeight * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
}

/** Task lane height: the event row, the poll row and a row per depth of spans inside. */
export function taskLaneHeight(t) {
  return LANE_PAD + EVENT_ROW + Math.max(1, t.depth) * DEPTH_H + LANE_PAD;
}

/** The task view: ten thousand lanes cannot each be a canvas row and a label element. The
 * scroll area is as tall as every lane; the canvas stays at its top (sticky) as tall as
 * the screen, and draws the lanes scrolled into it; labels exist for those lanes only. */
function layoutTasks() {
  const tasks = state.tasks || [];
  let y = AXIS_H;
  state.lanesY = tasks.map((t) => {
    const h = taskLaneHeight(t);
    const r = [y, h];
    y += h;
    return r;
  });
  const main = document.getElementById("main");
  const room = Math.max(MIN_MAIN_H, window.innerHeight - main.getBoundingClientRect().top - RESERVED_BELOW);
  main.style.height = Math.max(MIN_MAIN_H, Math.min(y + 10, room)) + "px";
  const scroller = wrap.parentElement;
  wrap.style.height = (y + 10) + "px";
  canvas.style.position = "sticky";
  canvas.style.top = "0px";
  sizeCanvas(scroller.clientHeight);
  const labels = document.getElementById("labels");
  labels.style.position = "relative";
  labels.style.height = (y + 10) + "px";
  state.scrollY = scroller.scrollTop;
  placeTaskLabels();
}

/** Labels for the task lanes on screen only. */
export function placeTaskLabels() {
  const labels = document.getElementById("labels");
  labels.replaceChildren();
  const [first, last] = visibleLanes();
  for (let i = first; i < last; i++) {
    const t = state.tasks[i];
    const div = document.createElement("div");
    div.className = "lane-label task-label";
    div.style.position = "absolute";
    div.style.left = "0";
    div.style.right = "0";
    div.style.top = state.lanesY[i][0] + "px"; // from the padding edge: the axis row included
    div.style.height = state.lanesY[i][1] + "px";
    const group = state.taskOrder === "name" && (i === 0 || state.tasks[i - 1].name !== t.name);
    const name = document.createElement("span");
    name.textContent = t.label + " ";
    if (group) div.classList.add("group-start");
    const polls = document.createElement("span");
    polls.className = "tid";
    polls.textContent = t.polls + (t.polls === 1 ? " poll" : " polls") + (t.open ? " · open" : "");
    div.append(name, polls);
    div.title = t.label + " (" + t.polls + " polls on " + t.workers.map((w) => state.meta.lanes[w]?.name ?? "?").join(", ") + ")";
    div.dataset.task = t.task;
    labels.appendChild(div);
  }
}
