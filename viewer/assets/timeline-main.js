import { fetchOverview, requestWindow } from "./timeline-data.js";
import { draw } from "./timeline-drawing.js";
import { pan, setView, zoom } from "./timeline-input.js";
import { selectObject } from "./timeline-panels.js";
import { FLAGS, MIN_MAIN_H, api, canvas, fmtDuration, layout, state, width } from "./timeline-state.js";

// ---- start ------------------------------------------------------------------------------

export function banner(meta) {
  const t = meta.trigger;
  const b = document.getElementById("banner");
  if (!t) return;
  const lines = [t.description];
  if (t.thread) lines.push("thread: " + t.thread);
  for (const s of t.stuck || []) {
    lines.push(`stuck: ${s.name} silent for ${fmtDuration(s.silent_ns)}` +
      (s.open_spans.length ? " inside " + s.open_spans.join(" › ") : ""));
  }
  b.textContent = lines.join("\n");
  b.hidden = false;
  if (["panic", "crash", "stall"].includes(t.reason)) b.classList.add("bad");
}

export async function main() {
  const r = await fetch(api("/meta"));
  const meta = await r.json();
  if (!r.ok) {
    const b = document.getElementById("banner");
    b.textContent = "Cannot open this dump: " + (meta.error || r.statusText);
    b.hidden = false;
    b.classList.add("bad");
    return;
  }
  state.meta = meta;
  state.origin = BigInt(meta.origin);
  FLAGS.startsBeforeData = meta.constants.flags.starts_before_data;
  FLAGS.openAtEnd = meta.constants.flags.open_at_end;
  document.getElementById("title").textContent =
    `${meta.service} · pid ${meta.pid} · ${meta.host} · ${meta.records} records · ${meta.lanes.length} threads`;
  document.title = "flightrec: " + meta.service + " " + meta.pid;
  banner(meta);
  layout();
  window.addEventListener("resize", () => { layout(); draw(); requestWindow(true); fetchOverview(); });
  fetchOverview();
  const params = new URLSearchParams(location.search);
  setView(0, Math.max(1, meta.end));
  // ?focus=trigger: the last millisecond before the trigger, where the culprit usually is.
  if (params.get("focus") === "trigger" && meta.trigger && meta.trigger.t != null) {
    setView(meta.trigger.t - 1e6, meta.trigger.t + 1e5);
  }
  // ?from=&to= (ns since the Unix epoch): open on that stretch of time.
  const digits = /^\d+$/;
  if (digits.test(params.get("from") || "") && digits.test(params.get("to") || "")) {
    setView(Number(BigInt(params.get("from")) - state.origin), Number(BigInt(params.get("to")) - state.origin));
  }
  if (params.has("field") && params.has("value")) selectObject(params.get("field"), params.get("value"));
}

// What the browser test (and a curious user, from the console) can ask of the page.
window.flightrecView = {
  state,
  /** Resolves once no window request is pending and the latest answer is drawn. */
  settled() {
    if (state.pending === 0 && state.data) return Promise.resolve();
    return new Promise((res) => state.settledWaiters.push(res));
  },
  /** Drawn events, in page coordinates (for clicking them like a user). */
  drawnEvents() {
    const rect = canvas.getBoundingClientRect();
    return state.drawn.filter((d) => d.kind === "event").map((d) => ({
      id: d.id, lane: d.lane, title: d.title, x: rect.left + d.x + d.w / 2, y: rect.top + d.y + d.h / 2,
    }));
  },
  highlighted() { return state.object ? state.object.records.map((r) => r.id) : []; },
  /** Where things landed on the page, for layout checks: canvas, lanes, labels, list. */
  layout() {
    const rect = canvas.getBoundingClientRect();
    const last = state.lanesY[state.lanesY.length - 1];
    const wrapRect = document.getElementById("timeline-wrap").getBoundingClientRect();
    const object = document.getElementById("object");
    return {
      canvasWidth: width(),
      axisLabels: state.axisLabels,
      triggerLabel: state.triggerLabel || null,
      lanesBottom: Math.min(rect.top + last[0] + last[1], wrapRect.bottom),
      timelineBottom: document.getElementById("main").getBoundingClientRect().bottom,
      timelineHeight: document.getElementById("main").getBoundingClientRect().height,
      minTimelineHeight: MIN_MAIN_H,
      objectTop: object.hidden ? null : object.getBoundingClientRect().top,
      objectFirstRow: [...(object.querySelector("tbody tr")?.children || [])].map((td) => td.textContent),
    };
  },
  /** ms from each pan or zoom input to its redraw, in order. */
  frameTimes() { return state.frames.slice(); },
  /** ms from each input that needed the server to the drawing of its answer. */
  refineTimes() { return state.refines.slice(); },
  zoom, pan, setView,
};

main();
