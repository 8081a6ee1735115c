// The timeline of one dump. The server holds the decoded dump; this page asks it only for
// what the view needs and draws that on a canvas. Pan and zoom never wait for the network:
// they redraw at once from what the page holds (the window around the view, asked for with
// a view's width of margin on each side, and an overview of the whole recording as the
// coarser level), and the server's answer for the new view refines the drawing when it
// comes. Every string from the dump is drawn with fillText or set with textContent: nothing
// from a dump is ever parsed as HTML.

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

// Everything the page holds, every field declared here: modules read and write these, and
// nothing else is added at run time.
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
  marked: [], // a picked finding's evidence records: {id, t, lane, task}
  follow: null, // span answer being followed
  ruler: null, // {a, b} relative ns
  hits: [], // search matches: {id, t}
  hitQuery: null, // the search text `hits` answer
  hitIndex: -1,
  axisLabels: [], // the axis's time labels as drawn: {x, w, text}
  triggerLabel: null, // the trigger marker's label on the axis: {x, w}
  problems: [], // API errors shown on the page, newest last: {what, status, message}
  pending: 0, // window requests asked for and not answered yet
  overviewPending: 0, // overview requests not answered yet
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
