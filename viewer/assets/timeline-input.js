import { fetchOverview, filterParams, requestWindow } from "./timeline-data.js";
import { draw, markInput } from "./timeline-drawing.js";
import { showLock, showRecord, showSpan, showTriggerStacks } from "./timeline-panels.js";
import { AXIS_H, api, canvas, state, tOf, width } from "./timeline-state.js";

// ---- navigation -------------------------------------------------------------------------

export const MIN_SPAN = 50; // ns

export function setView(start, end) {
  const full = Math.max(1, state.meta.end);
  const margin = full * 0.05 + 1000;
  let span = Math.max(MIN_SPAN, Math.min(end - start, full + 2 * margin));
  start = Math.max(-margin, Math.min(start, full + margin - span));
  state.view = { start, end: start + span };
  draw();
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

export let drag = null;
canvas.addEventListener("mousedown", (e) => {
  const x = e.offsetX;
  drag = { x, start: state.view.start, end: state.view.end, ruler: e.shiftKey, moved: false };
  if (e.shiftKey) state.ruler = { a: tOf(x), b: tOf(x) };
});
window.addEventListener("mousemove", (e) => {
  if (!drag) return;
  const rect = canvas.getBoundingClientRect();
  const x = e.clientX - rect.left;
  if (Math.abs(x - drag.x) > 3) drag.moved = true;
  if (drag.ruler) {
    state.ruler.b = tOf(x);
    draw();
  } else if (drag.moved) {
    markInput(e);
    const dt = ((x - drag.x) / width()) * (drag.end - drag.start);
    setView(drag.start - dt, drag.end - dt);
  }
});
window.addEventListener("mouseup", (e) => {
  if (drag && !drag.moved && !drag.ruler) click(e);
  drag = null;
});

export function click(e) {
  const rect = canvas.getBoundingClientRect();
  const x = e.clientX - rect.left;
  const y = e.clientY - rect.top;
  // The trigger's marker (its label on the axis) opens its details, stacks included.
  const tl = state.triggerLabel;
  if (tl && y <= AXIS_H && x >= tl.x - 4 && x <= tl.x + tl.w + 4) {
    showTriggerStacks();
    return;
  }
  const inside = (d) => x >= d.x && x <= d.x + d.w && y >= d.y && y <= d.y + d.h;
  const hit = state.drawn.find((d) => d.kind === "event" && inside(d))
    || state.drawn.find((d) => (d.kind === "wait" || d.kind === "hold") && inside(d))
    || state.drawn.find((d) => (d.kind === "span" || d.kind === "poll") && inside(d));
  if (!hit) return;
  if (hit.kind === "event") showRecord(hit.id);
  else if (hit.kind === "wait" || hit.kind === "hold") showLock(hit.lockId);
  else showSpan(hit.span, false);
}

canvas.addEventListener("wheel", (e) => {
  e.preventDefault();
  markInput(e);
  if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) pan((e.deltaX || e.deltaY) / 500);
  else zoom(Math.pow(1.0015, e.deltaY), e.offsetX);
}, { passive: false });

window.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
  const k = e.key.toLowerCase();
  markInput(e);
  if (k === "w") zoom(0.7);
  else if (k === "s") zoom(1 / 0.7);
  else if (k === "a") pan(-0.2);
  else if (k === "d") pan(0.2);
  else if (k === "0" || k === "home") setView(0, state.meta.end);
  else if (k === "escape") {
    state.ruler = null; state.object = null; state.follow = null;
    document.getElementById("object").hidden = true;
    draw();
  } else {
    state.inputAt = null; // not a navigation key: nothing to time
    return;
  }
  e.preventDefault();
});

// ---- filters and search -----------------------------------------------------------------

for (const id of ["level", "target", "text"]) {
  document.getElementById(id).addEventListener("input", () => {
    requestWindow(true);
    fetchOverview();
  });
}

document.getElementById("search").addEventListener("keydown", async (e) => {
  if (e.key !== "Enter") return;
  const q = e.target.value;
  const status = document.getElementById("search-status");
  if (!q) { state.hits = []; status.textContent = ""; draw(); return; }
  if (q !== state.hitQuery) {
    const f = filterParams();
    const r = await (await fetch(api("/search", { ...f, text: q }))).json();
    state.hits = r.hits;
    state.hitQuery = q;
    state.hitIndex = -1;
    status.textContent = r.total + " matches";
  }
  if (!state.hits.length) { status.textContent = "no match"; return; }
  const center = (state.view.start + state.view.end) / 2;
  if (state.hitIndex < 0) {
    state.hitIndex = state.hits.findIndex((h) => h.t > center);
    if (state.hitIndex < 0) state.hitIndex = 0;
  } else {
    state.hitIndex = (state.hitIndex + (e.shiftKey ? state.hits.length - 1 : 1)) % state.hits.length;
  }
  status.textContent = `${state.hitIndex + 1} / ${state.hits.length}`;
  const h = state.hits[state.hitIndex];
  centerOn(h.t);
  showRecord(h.id);
});
