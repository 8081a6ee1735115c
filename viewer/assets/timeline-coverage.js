// What the page holds against what the view needs: the filters and lanes a request is for,
// and whether a held answer covers the view.
import { state, visibleLanes, width } from "./timeline-state.js";

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

/** The overview holds the lanes on screen (the task view scrolls past what it asked for). */
export function overviewCovers() {
  const req = state.overviewReq;
  return req && req.filters === JSON.stringify(filterParams()) && coversLanes(req);
}
