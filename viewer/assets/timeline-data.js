import { draw } from "./timeline-drawing.js";
import { api, state, width } from "./timeline-state.js";

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

/** Whether the answer to `req` holds the current view at about the view's resolution. */
export function covers(req) {
  if (!req || req.filters !== JSON.stringify(filterParams())) return false;
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
  const req = { start: -full * 0.05, end: full * 1.05, width: Math.max(1, Math.round(width())), filters: JSON.stringify(filterParams()) };
  const r = await fetch(api("/window", {
    start: Math.floor(req.start), end: Math.ceil(req.end), width: req.width, ...filterParams(),
  }));
  if (!r.ok) return;
  state.overview = await r.json();
  state.overviewReq = req;
  draw();
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
  };
  const params = { start: req.start, end: req.end, width: req.width, ...filterParams() };
  try {
    const r = await fetch(api("/window", params));
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || r.statusText);
    if (seq === state.fetchSeq) {
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
