import { getJSON, noteProblem } from "./timeline-api.js";
import { filterParams } from "./timeline-coverage.js";
import { fetchOverview, requestWindow } from "./timeline-data.js";
import { markInput } from "./timeline-drawing.js";
import { centerOn, pan, setView, zoom } from "./timeline-nav.js";
import { showLock, showRecord, showSpan, showTriggerStacks } from "./timeline-panels.js";
import { drawNow, requestDraw } from "./timeline-render.js";
import { AXIS_H, canvas, state, tOf, width } from "./timeline-state.js";

// Mouse, wheel and keys; filters and search.
let drag = null;
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
    drawNow();
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

function click(e) {
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
    state.ruler = null; state.object = null; state.follow = null; state.marked = [];
    document.getElementById("object").hidden = true;
    requestDraw();
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
  if (!q) { state.hits = []; status.textContent = ""; requestDraw(); return; }
  if (q !== state.hitQuery) {
    const f = filterParams();
    let r;
    try {
      r = await getJSON("/search", { ...f, text: q });
    } catch (err) {
      noteProblem("search", err);
      state.hits = [];
      state.hitQuery = null;
      status.textContent = "search failed: " + err.message;
      requestDraw();
      return;
    }
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
