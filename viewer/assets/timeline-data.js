import { draw } from "./timeline-drawing.js";
import { api, placeTaskLabels, state, visibleLanes, width } from "./timeline-state.js";

// ---- data -------------------------------------------------------------------------------

export function filterParams() {
  return {
    level: document.getElementById("level").value,
    target: document.getElementById("target").value,
    text: document.getElementById("text").value,
  };
}

/** Margin asked for on each side of the view, in view widths. */
export const MARGIN_VIEWS = 1;

/** Task lanes asked for above and below those on screen. */
export const MARGIN_LANES = 30;

/** The view's part of a window request: threads, or the task lanes around those on screen. */
export function viewParams() {
  if (state.mode !== "tasks") return { view: "threads" };
  const [first, last] = visibleLanes();
  const from = Math.max(0, first - MARGIN_LANES);
  return { view: "tasks", order: state.taskOrder, first: from, count: last + MARGIN_LANES - from };
}

/** Whether `req` was for the current view and holds every lane on screen. */
function coversLanes(req) {
  if (req.view.view !== state.mode) return false;
  if (state.mode !== "tasks") return true;
  const [first, last] = visibleLanes();
  return req.view.order === state.taskOrder && req.view.first <= first && req.view.first + req.view.count >= last;
}

/** Whether the answer to `req` holds the current view at about the view's resolution. */
export function covers(req) {
  if (!req || req.filters !== JSON.stringify(filterParams())) return false;
  if (!coversLanes(req)) return false;
  const v = state.view;
  const nsPerPx = (v.end - v.start) / Math.max(1, width());
  const reqNsPerPx = (req.end - req.start) / req.width;
  return req.start <= v.start && req.end >= v.end && reqNsPerPx <= nsPerPx * 1.5 && reqNsPerPx >= nsPerPx / 3;
}

export let fetchTimer = null;
/** Asks the server for the view, unless what the page holds already answers it. */
export function requestWindow(force) {
  if (!force && covers(state.dataReq)) return;
  clearTimeout(fetchTimer);
  state.pending++;
  fetchTimer = setTimeout(fetchWindow, 16);
}

/** The whole recording at the canvas's width: what zooming out shows before the answer. */
export async function fetchOverview() {
  const full = Math.max(1, state.meta.end);
  const view = viewParams();
  const req = { start: -full * 0.05, end: full * 1.05, width: Math.max(1, Math.round(width())), filters: JSON.stringify(filterParams()), view };
  const r = await fetch(api("/window", {
    start: Math.floor(req.start), end: Math.ceil(req.end), width: req.width, ...view, ...filterParams(),
  }));
  if (!r.ok) return;
  const answer = await r.json();
  if (view.view !== state.mode) return; // the view changed meanwhile
  state.overview = answer;
  state.overviewReq = req;
  draw();
}

/** The overview holds the lanes on screen (the task view scrolls past what it asked for). */
export function overviewCovers() {
  const req = state.overviewReq;
  return req && req.filters === JSON.stringify(filterParams()) && coversLanes(req);
}

export async function fetchWindow() {
  const seq = ++state.fetchSeq;
  const input = state.lastInput;
  state.lastInput = null;
  const v = { ...state.view };
  const span = v.end - v.start;
  const px = Math.max(1, Math.round(width()));
  const req = {
    start: Math.floor(v.start - MARGIN_VIEWS * span),
    end: Math.ceil(v.end + MARGIN_VIEWS * span),
    width: px * (1 + 2 * MARGIN_VIEWS),
    filters: JSON.stringify(filterParams()),
    view: viewParams(),
  };
  const params = { start: req.start, end: req.end, width: req.width, ...req.view, ...filterParams() };
  try {
    const r = await fetch(api("/window", params));
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || r.statusText);
    if (seq === state.fetchSeq && req.view.view === state.mode) {
      state.data = data;
      state.dataReq = req;
      draw();
      if (input != null) state.refines.push(performance.now() - input);
    }
  } catch (e) {
    setStatus("error: " + e.message);
  } finally {
    state.pending = Math.max(0, state.pending - 1);
    if (seq === state.fetchSeq) {
      state.pending = 0;
      const ws = state.settledWaiters;
      state.settledWaiters = [];
      ws.forEach((f) => f());
    }
  }
}

export function setStatus(text) { document.getElementById("perf").textContent = text; }

/** The task lanes scrolled: labels and drawing follow at once, the lanes' contents when the
 * server answers (only for lanes the page does not hold yet). */
export function scrollTasks() {
  if (state.mode !== "tasks") return;
  const t0 = performance.now();
  state.scrollY = document.getElementById("timeline-wrap").scrollTop;
  placeTaskLabels();
  draw();
  state.scrolls.push(performance.now() - t0);
  requestWindow();
  if (!overviewCovers()) fetchOverview();
}
