import { overviewCovers } from "./timeline-coverage.js";
import { setStatus } from "./timeline-status.js";
import { AXIS_H, DEPTH_H, EVENT_ROW, FLAGS, LANE_PAD, LEVEL_COLOURS, canvas, ctx, fmtDuration, laneHidden, laneTop, state, visibleLanes, wallClock, width, xOf } from "./timeline-state.js";

// ---- drawing ----------------------------------------------------------------------------

export function hue(s) {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
  return h % 360;
}

export function niceStep(ns) {
  const p = Math.pow(10, Math.floor(Math.log10(ns)));
  for (const m of [1, 2, 5, 10]) if (m * p >= ns) return m * p;
  return 10 * p;
}

export function drawAxis(w) {
  ctx.fillStyle = "#eef0f4";
  ctx.fillRect(0, 0, w, AXIS_H);
  const span = state.view.end - state.view.start;
  const step = niceStep(span / Math.max(2, w / 140));
  const first = Math.ceil(state.view.start / step) * step;
  ctx.fillStyle = "#334";
  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeStyle = "#dfe3ea";
  // Labels stay whole inside the canvas: one that would run past the right edge moves left
  // of it, and is left out only if that would cover its neighbour.
  state.axisLabels = [];
  let prevEnd = -Infinity;
  for (let t = first; t <= state.view.end; t += step) {
    const x = Math.round(xOf(t)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x, AXIS_H - 6);
    ctx.lineTo(x, canvas.clientHeight);
    ctx.stroke();
    const text = wallClock(t, step);
    const tw = ctx.measureText(text).width;
    const lx = Math.min(x + 3, w - tw - 3);
    if (lx < prevEnd + 8) continue;
    ctx.fillText(text, lx, 14);
    state.axisLabels.push({ text, x: lx, w: tw });
    prevEnd = lx + tw;
  }
}

/** A worker's colour in the task view: each thread its own hue. */
export function workerColour(lane, light) {
  const l = state.meta.lanes[lane];
  return `hsl(${hue((l ? l.name + "/" + l.tid : "?") + "#")}, 60%, ${light ? 62 : 45}%)`;
}

/** Task lanes: stripes, and the task's life from creation to close drawn as waiting (a thin
 * dashed line on the poll row, the polls drawn over it). */
export function drawTaskBackgrounds(w) {
  const [first, last] = visibleLanes();
  for (let i = first; i < last; i++) {
    const t = state.tasks[i];
    const y = laneTop(i);
    const h = state.lanesY[i][1];
    ctx.fillStyle = i % 2 ? "#fbfbfd" : "#ffffff";
    ctx.fillRect(0, y, w, h);
    if (state.taskOrder === "name" && i > 0 && state.tasks[i - 1].name !== t.name) {
      ctx.strokeStyle = "#99a";
      ctx.beginPath();
      ctx.moveTo(0, y + 0.5);
      ctx.lineTo(w, y + 0.5);
      ctx.stroke();
    }
    const x0 = Math.max(-2, xOf(t.start));
    const x1 = Math.min(w + 2, xOf(t.end));
    if (x1 >= 0 && x0 <= w) {
      const py = y + LANE_PAD + EVENT_ROW + DEPTH_H / 2;
      ctx.strokeStyle = "#8a93a6";
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(x0, py + 0.5);
      ctx.lineTo(x1, py + 0.5);
      ctx.stroke();
      ctx.setLineDash([]);
      // Creation and close marks.
      ctx.fillStyle = "#8a93a6";
      ctx.fillRect(x0, py - 4, 1.5, 9);
      if (!t.open) ctx.fillRect(x1 - 1.5, py - 4, 1.5, 9);
      state.drawn.push({ kind: "life", lane: i, x: x0, y: py - 4, w: x1 - x0, h: 9, b: t.start, e: t.end });
    }
    ctx.strokeStyle = "#eef";
    ctx.beginPath();
    ctx.moveTo(0, y + h - 0.5);
    ctx.lineTo(w, y + h - 0.5);
    ctx.stroke();
  }
}

export function drawLaneBackgrounds(w) {
  if (state.mode === "tasks") return drawTaskBackgrounds(w);
  state.meta.lanes.forEach((l, i) => {
    const [y, h] = state.lanesY[i];
    if (laneHidden(i)) {
      // A folded process: one grey row, and the line where the next process starts.
      if (h > 0) {
        ctx.fillStyle = "#eceff4";
        ctx.fillRect(0, y, w, h);
        ctx.fillStyle = "#556";
        ctx.fillRect(0, y + h - 2, w, 2);
      }
      return;
    }
    ctx.fillStyle = i % 2 ? "#fbfbfd" : "#ffffff";
    ctx.fillRect(0, y, w, h);
    if (l.cut) {
      // The file was cut: after this thread's last surviving record nothing is known.
      // Hatch it, so lost data never looks like an idle thread.
      const x = Math.max(0, Math.min(w, xOf(l.last)));
      if (x < w) {
        hatch(ctx, x, w, y, h, "#e3c0c0");
        ctx.fillStyle = "#a33";
        ctx.font = "11px system-ui, sans-serif";
        ctx.fillText("data ends here: the file was cut ▶", Math.min(x + 4, w - 4), y + h - 4);
      }
    }
    if (l.overwritten > 0) {
      // Before this thread's data starts, nothing is known: hatch it, so an overwritten
      // past is never mistaken for an idle one.
      const x = Math.min(w, Math.max(0, xOf(l.data_start)));
      if (x > 0) {
        hatch(ctx, 0, x, y, h, "#e6d3b3");
        ctx.fillStyle = "#a60";
        ctx.font = "11px system-ui, sans-serif";
        const label = "◀ overwritten · data starts here";
        const tw = ctx.measureText(label).width;
        ctx.fillText(label, Math.max(2, x - tw - 4), y + h - 4);
      }
      const xs = xOf(l.data_start);
      if (xs >= 0 && xs <= w) {
        ctx.strokeStyle = "#c80";
        ctx.beginPath();
        ctx.moveTo(xs + 0.5, y);
        ctx.lineTo(xs + 0.5, y + h);
        ctx.stroke();
      }
    }
    ctx.strokeStyle = "#eef";
    ctx.beginPath();
    ctx.moveTo(0, y + h - 0.5);
    ctx.lineTo(w, y + h - 0.5);
    ctx.stroke();
    // Several recordings: a firm line where one process's threads end.
    const next = state.meta.lanes[i + 1];
    if (next && next.process !== l.process) {
      ctx.fillStyle = "#556";
      ctx.fillRect(0, y + h - 2, w, 2);
    }
  });
}

export function drawBars(w, laneIndex, lane, y) {
  ctx.font = "11px system-ui, sans-serif";
  for (const b of lane.bars) {
    let begin, end, depth, bar = null;
    if (Array.isArray(b)) [begin, end, depth] = b; // a clump of sub-pixel bars
    else { begin = b.b; end = b.e; depth = b.d; bar = b; }
    const x0 = Math.max(-2, xOf(begin));
    const x1 = Math.min(w + 2, xOf(end));
    if (x1 < 0 || x0 > w) continue; // held for panning, outside the view
    const by = y + LANE_PAD + EVENT_ROW + depth * DEPTH_H;
    const bw = Math.max(1, x1 - x0);
    if (!bar) {
      ctx.fillStyle = "#c9ced8";
      ctx.fillRect(x0, by + 1, bw, DEPTH_H - 2);
      state.drawn.push({ x: x0, y: by, w: bw, h: DEPTH_H, kind: "clump", lane: laneIndex, d: depth, b: begin, e: end });
      continue;
    }
    const followed = state.follow && state.follow.span === bar.span;
    const selected = state.selected && state.selected.kind === "span" && state.selected.id === bar.span;
    const poll = bar.worker != null;
    ctx.fillStyle = poll ? workerColour(bar.worker, !(followed || selected)) : `hsl(${hue(bar.name)}, 55%, ${followed || selected ? 55 : 72}%)`;
    ctx.fillRect(x0, by + 1, bw, DEPTH_H - 2);
    if (bar.flags & FLAGS.startsBeforeData) { ctx.fillStyle = "#a60"; ctx.fillRect(x0, by + 1, 2, DEPTH_H - 2); }
    if (bar.flags & FLAGS.openAtEnd) { ctx.fillStyle = "#a00"; ctx.fillRect(x0 + bw - 2, by + 1, 2, DEPTH_H - 2); }
    if (followed || selected) {
      ctx.strokeStyle = "#1d2330";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(x0 + 0.5, by + 1.5, bw - 1, DEPTH_H - 3);
      ctx.lineWidth = 1;
    }
    if (bw > 24) {
      ctx.save();
      ctx.beginPath();
      ctx.rect(x0, by, bw, DEPTH_H);
      ctx.clip();
      ctx.fillStyle = poll ? "#fff" : "#1d2330";
      const text = poll ? (state.meta.lanes[bar.worker]?.name ?? "?") : bar.name;
      ctx.fillText(text, Math.max(x0, 0) + 3, by + DEPTH_H - 3);
      ctx.restore();
    }
    state.drawn.push({ x: x0, y: by, w: bw, h: DEPTH_H, kind: poll ? "poll" : "span", span: bar.span, lane: laneIndex, worker: bar.worker, b: begin, e: end });
  }
}

export function drawEvents(w, laneIndex, lane, y) {
  const ey = y + LANE_PAD;
  for (const [x0t, count, level] of lane.buckets) {
    const x = xOf(x0t);
    const px = Math.max(1, xOf(x0t + lane.px) - x);
    if (x + px < 0 || x > w) continue;
    ctx.globalAlpha = Math.min(1, 0.25 + Math.log10(1 + count) / 3);
    ctx.fillStyle = LEVEL_COLOURS[level] || "#888";
    ctx.fillRect(x, ey, px, EVENT_ROW - 2);
  }
  ctx.globalAlpha = 1;
  for (const e of lane.events) {
    const x = xOf(e.t);
    if (x < -5 || x > w + 5) continue;
    ctx.fillStyle = LEVEL_COLOURS[e.level] || "#888";
    ctx.beginPath();
    ctx.moveTo(x, ey);
    ctx.lineTo(x + 4, ey + EVENT_ROW - 3);
    ctx.lineTo(x - 4, ey + EVENT_ROW - 3);
    ctx.closePath();
    ctx.fill();
    state.drawn.push({ x: x - 5, y: ey - 1, w: 10, h: EVENT_ROW + 1, kind: "event", id: e.id, lane: laneIndex, t: e.t, title: e.title });
  }
}

export function eventPoint(lane, t) {
  return [xOf(t), laneTop(lane) + LANE_PAD + EVENT_ROW / 2];
}

/** The lane a record of an object trail or search is drawn on, in the current view. */
export function recordLane(r) {
  if (state.mode === "tasks") return r.task == null ? null : state.taskPos.get(r.task) ?? null;
  return r.lane;
}

export function arrow(x0, y0, x1, y1, colour) {
  ctx.strokeStyle = colour;
  ctx.fillStyle = colour;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
  const a = Math.atan2(y1 - y0, x1 - x0);
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - 8 * Math.cos(a - 0.4), y1 - 8 * Math.sin(a - 0.4));
  ctx.lineTo(x1 - 8 * Math.cos(a + 0.4), y1 - 8 * Math.sin(a + 0.4));
  ctx.closePath();
  ctx.fill();
  ctx.lineWidth = 1;
}

export function drawObject() {
  const o = state.object;
  if (!o) return;
  let prev = null;
  const tasks = state.mode === "tasks";
  for (const r of o.records) {
    const lane = recordLane(r);
    if (lane == null) continue;
    const [x, y] = eventPoint(lane, r.t);
    ctx.strokeStyle = "#7b2cbf";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(x, y, 7, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.lineWidth = 1;
    const handover = tasks ? r.task_handover : r.handover;
    if (prev) arrow(prev[0], prev[1], x, y, handover ? "#e85d04" : "#7b2cbf");
    prev = [x, y];
  }
}

/** A picked finding's evidence: each record boxed in red. */
export function drawMarked() {
  for (const r of state.marked) {
    const lane = recordLane(r);
    if (lane == null || laneHidden(lane)) continue;
    const [x, y] = eventPoint(lane, r.t);
    ctx.strokeStyle = "#d0312d";
    ctx.lineWidth = 2;
    ctx.strokeRect(x - 9, y - 9, 18, 18);
    ctx.lineWidth = 1;
  }
}

export function entryY(e) {
  return laneTop(e.lane) + LANE_PAD + EVENT_ROW + e.d * DEPTH_H + DEPTH_H / 2;
}

export function drawFollow() {
  const f = state.follow;
  // A span's entries are placed on thread lanes.
  if (!f || state.mode === "tasks") return;
  let prev = null;
  for (const e of f.entries) {
    const by = entryY(e);
    const x0 = xOf(e.b);
    if (prev) arrow(prev[0], prev[1], x0, by, prev[2] !== e.lane ? "#e85d04" : "#1d2330");
    prev = [xOf(e.e), by, e.lane];
  }
  // follows_from: from the cause's first entry to the effect's first entry.
  for (const l of f.linked || []) {
    const [cause, effect] = l.dir === "follows" ? [l.span, f] : [f, l.span];
    const a = cause.entries[0];
    const b = effect.entries[0];
    if (a && b) arrow(xOf(a.e), entryY(a), xOf(b.b), entryY(b), "#2f6fde");
  }
}

export function drawTrigger(w) {
  const t = state.meta.trigger;
  if (!t || t.t == null) return;
  const x = xOf(t.t);
  if (x < 0 || x > w) return;
  ctx.strokeStyle = "#d0312d";
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(x, 0);
  ctx.lineTo(x, canvas.clientHeight);
  ctx.stroke();
  ctx.lineWidth = 1;
  ctx.fillStyle = "#d0312d";
  ctx.font = "bold 11px system-ui, sans-serif";
  const text = "⚡ " + t.reason;
  const tw = ctx.measureText(text).width;
  // Right of the line, or left of it where the right would run out of the canvas.
  const lx = x + 4 + tw <= w ? x + 4 : Math.max(0, x - 4 - tw);
  ctx.fillText(text, lx, AXIS_H - 2);
  state.triggerLabel = { text, x: lx, w: tw };
}

export function drawRuler() {
  const r = state.ruler;
  if (!r) return;
  const x0 = xOf(Math.min(r.a, r.b));
  const x1 = xOf(Math.max(r.a, r.b));
  ctx.fillStyle = "rgba(47, 111, 222, 0.12)";
  ctx.fillRect(x0, AXIS_H, x1 - x0, canvas.clientHeight);
  ctx.strokeStyle = "#2f6fde";
  for (const x of [x0, x1]) {
    ctx.beginPath();
    ctx.moveTo(x + 0.5, AXIS_H);
    ctx.lineTo(x + 0.5, canvas.clientHeight);
    ctx.stroke();
  }
  const label = fmtDuration(Math.abs(r.b - r.a));
  ctx.font = "bold 12px system-ui, sans-serif";
  const tw = ctx.measureText(label).width;
  ctx.fillStyle = "#2f6fde";
  ctx.fillRect((x0 + x1) / 2 - tw / 2 - 4, AXIS_H + 2, tw + 8, 16);
  ctx.fillStyle = "#fff";
  ctx.fillText(label, (x0 + x1) / 2 - tw / 2, AXIS_H + 14);
}

export function drawSearchHit() {
  const h = state.hits[state.hitIndex];
  if (!h || h.lane == null || state.mode === "tasks") return;
  const [x, y] = eventPoint(h.lane, h.t);
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 2;
  ctx.strokeRect(x - 7, y - 8, 14, 16);
  ctx.lineWidth = 1;
}

export function drawLanes(data, w) {
  const [first, last] = visibleLanes();
  const base = data.first || 0;
  data.lanes.forEach((lane, k) => {
    const i = base + k;
    if (i < first || i >= last || i >= state.lanesY.length || laneHidden(i)) return;
    const y = laneTop(i);
    drawBars(w, i, lane, y);
    if (lane.locks) drawLocks(w, i, lane, y);
    drawEvents(w, i, lane, y);
  });
}

/** Locks (`flightrec::sync`): a hold is a thin bar under the event row in the lock's colour,
 * a wait a hatched red bar across the event row, named when there is room. */
export function drawLocks(w, laneIndex, lane, y) {
  const top = y + LANE_PAD;
  for (const l of lane.locks) {
    const x0 = Math.max(-2, xOf(l.b));
    const x1 = Math.min(w + 2, xOf(l.e));
    if (x1 < 0 || x0 > w) continue;
    const bw = Math.max(2, x1 - x0);
    if (l.kind === "hold") {
      ctx.fillStyle = `hsl(${hue(l.name)}, 60%, 40%)`;
      ctx.fillRect(x0, top + EVENT_ROW - 3, bw, 3);
      state.drawn.push({ x: x0, y: top + EVENT_ROW - 4, w: bw, h: 4, kind: "hold", lane: laneIndex, lock: l.name, lockId: l.lock, b: l.b, e: l.e, open: l.open });
      continue;
    }
    const h = EVENT_ROW - 4;
    ctx.save();
    ctx.beginPath();
    ctx.rect(x0, top, bw, h);
    ctx.clip();
    ctx.fillStyle = "rgba(208, 49, 45, 0.12)";
    ctx.fillRect(x0, top, bw, h);
    ctx.strokeStyle = "rgba(208, 49, 45, 0.7)";
    for (let k = x0 - h; k < x0 + bw; k += 6) {
      ctx.beginPath();
      ctx.moveTo(k, top + h);
      ctx.lineTo(k + h, top);
      ctx.stroke();
    }
    if (bw > 80) {
      ctx.fillStyle = "#a01010";
      ctx.font = "bold 10px system-ui, sans-serif";
      ctx.fillText("waits for " + l.name, Math.max(x0, 0) + 4, top + h - 2);
    }
    ctx.restore();
    state.drawn.push({ x: x0, y: top, w: bw, h, kind: "wait", lane: laneIndex, lock: l.name, lockId: l.lock, b: l.b, e: l.e, open: l.open });
  }
}

/** A deadlock's cycle: from each waiting thread to the thread holding what it waits for. */
export function drawDeadlocks(w) {
  if (state.mode !== "threads") return;
  for (const d of state.meta.deadlocks || []) {
    d.steps.forEach((s, k) => {
      if (s.lane == null || s.holder == null) return;
      // Where the wait began, kept on screen, each step a little apart.
      const x = Math.min(w - 20, Math.max(20, xOf(s.since))) + k * 6;
      const y0 = laneTop(s.lane) + LANE_PAD + EVENT_ROW / 2;
      const y1 = laneTop(s.holder) + LANE_PAD + EVENT_ROW / 2;
      arrow(x, y0, x + 14, y1, "#d0312d");
      state.drawn.push({ kind: "cycle", lane: s.lane, holder: s.holder, x, y: Math.min(y0, y1), w: 14, h: Math.abs(y1 - y0), waitsFor: s.waits_for });
    });
  }
}

/** Notes when an input happened, so that the redraw it causes can be timed. */
export function markInput(e) {
  state.inputAt = e.timeStamp;
  state.lastInput = e.timeStamp;
}

export function draw() {
  if (!state.meta) return;
  const t0 = performance.now();
  const w = width();
  ctx.clearRect(0, 0, w, canvas.clientHeight);
  // In the task view, lanes scrolled up pass under the axis.
  const clipBelowAxis = () => {
    if (state.mode !== "tasks") return;
    ctx.beginPath();
    ctx.rect(0, AXIS_H, w, canvas.clientHeight - AXIS_H);
    ctx.clip();
  };
  state.drawn = [];
  ctx.save();
  clipBelowAxis();
  drawLaneBackgrounds(w);
  ctx.restore();
  drawAxis(w);
  ctx.save();
  clipBelowAxis();
  // The detailed answer where it reaches; the overview (coarser) around it, so that no
  // part of the view waits for the server.
  const dataFrom = state.dataReq ? xOf(state.dataReq.start) : 0;
  const dataTo = state.dataReq ? xOf(state.dataReq.end) : 0;
  const overviewCurrent = overviewCovers();
  if (state.overview && overviewCurrent && (!state.data || dataFrom > 0 || dataTo < w)) {
    ctx.save();
    ctx.beginPath();
    if (!state.data) ctx.rect(0, 0, w, canvas.clientHeight);
    else {
      if (dataFrom > 0) ctx.rect(0, 0, dataFrom, canvas.clientHeight);
      if (dataTo < w) ctx.rect(dataTo, 0, w - dataTo, canvas.clientHeight);
    }
    ctx.clip();
    drawLanes(state.overview, w);
    ctx.restore();
  }
  if (state.data && state.dataReq.view.view === state.mode) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(dataFrom, 0, dataTo - dataFrom, canvas.clientHeight);
    ctx.clip();
    drawLanes(state.data, w);
    ctx.restore();
  }
  drawFollow();
  drawObject();
  drawMarked();
  drawDeadlocks(w);
  ctx.restore();
  drawTrigger(w);
  drawSearchHit();
  drawRuler();
  state.renders++;
  const done = performance.now();
  const ms = done - t0;
  if (state.inputAt != null) {
    state.frames.push(done - state.inputAt);
    state.inputAt = null;
  }
  if (state.data && state.firstRenderMs == null) state.firstRenderMs = performance.now();
  setStatus(
    `${fmtDuration(state.view.end - state.view.start)} shown · ${state.drawn.length} items drawn in ${ms.toFixed(1)} ms`,
  );
}

/** Diagonal hatching over [x0, x1) of a lane row: where nothing is known (data lost). */
function hatch(ctx, x0, x1, y, h, colour) {
  ctx.save();
  ctx.beginPath();
  ctx.rect(x0, y, x1 - x0, h);
  ctx.clip();
  ctx.strokeStyle = colour;
  for (let k = x0 - h; k < x1; k += 8) {
    ctx.beginPath();
    ctx.moveTo(k, y + h);
    ctx.lineTo(k + h, y);
    ctx.stroke();
  }
  ctx.restore();
}
