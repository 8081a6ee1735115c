// Navigation: the view's time range. Every change draws at once from what the page holds,
// then asks the server for what it lacks.
import { requestWindow } from "./timeline-data.js";
import { drawNow } from "./timeline-render.js";
import { state, tOf, width } from "./timeline-state.js";

export const MIN_SPAN = 50; // ns

export function setView(start, end) {
  const full = Math.max(1, state.meta.end);
  const margin = full * 0.05 + 1000;
  let span = Math.max(MIN_SPAN, Math.min(end - start, full + 2 * margin));
  start = Math.max(-margin, Math.min(start, full + margin - span));
  state.view = { start, end: start + span };
  drawNow();
  requestWindow();
}

export function zoom(factor, atX) {
  const t = tOf(atX == null ? width() / 2 : atX);
  const { start, end } = state.view;
  setView(t - (t - start) * factor, t + (end - t) * factor);
}

export function pan(fraction) {
  const d = (state.view.end - state.view.start) * fraction;
  setView(state.view.start + d, state.view.end + d);
}

export function centerOn(t) {
  const half = (state.view.end - state.view.start) / 2;
  setView(t - half, t + half);
}
