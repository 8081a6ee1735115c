"use strict";
// The timeline of one dump. The server holds the decoded dump; this page asks it only for
// what the view needs and draws that on a canvas. Pan and zoom never wait for the network:
// they redraw at once from what the page holds (the window around the view, asked for with
// a view's width of margin on each side, and an overview of the whole recording as the
// coarser level), and the server's answer for the new view refines the drawing when it
// comes. Every string from the dump is drawn with fillText or set with textContent: nothing
// from a dump is ever parsed as HTML.

const dumpId = location.pathname.split("/").pop();
const api = (path, params) => {
  const q = params ? "?" + new URLSearchParams(params).toString() : "";
  return "/api/dumps/" + encodeURIComponent(dumpId) + path + q;
};

const LEVEL_COLOURS = { 1: "#9aa0a6", 2: "#2e9d5b", 3: "#2f6fde", 4: "#e08a00", 5: "#d0312d" };
const AXIS_H = 24;
const MIN_MAIN_H = 260; // px: room for the details panel however few lanes there are
const RESERVED_BELOW = 170; // px kept below the timeline for the object list and the footer
const EVENT_ROW = 14;
const DEPTH_H = 14;
const LANE_PAD = 6;
// Bar flags, as the server defines them (meta.constants); set when the meta arrives.
const FLAGS = { startsBeforeData: 0, openAtEnd: 0 };

const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d");
const wrap = document.getElementById("canvas-wrap");

const state = {
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
  fetchSeq: 0,
};

// ---- time formatting -------------------------------------------------------------------

function wallClock(t, stepNs) {
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

function fullWallClock(nsString) {
  const ns = BigInt(nsString);
  const d = new Date(Number(ns / 1000000n));
  const sub = (ns % 1000000n).toString().padStart(6, "0");
  return d.toISOString().slice(0, 23).replace("T", " ") + sub + " UTC";
}

/** A time in the recording, to the nanosecond: "+10.403 215 ms". */
function fmtOffset(ns) {
  const ms = Math.floor(ns / 1e6);
  const rest = String(Math.round(ns - ms * 1e6)).padStart(6, "0");
  return "+" + ms + "." + rest.slice(0, 3) + " " + rest.slice(3) + " ms";
}

function fmtDuration(ns) {
  const a = Math.abs(ns);
  if (a < 1e3) return ns.toFixed(0) + " ns";
  if (a < 1e6) return (ns / 1e3).toFixed(a < 1e4 ? 3 : 1) + " µs";
  if (a < 1e9) return (ns / 1e6).toFixed(a < 1e7 ? 3 : 1) + " ms";
  return (ns / 1e9).toFixed(3) + " s";
}

// ---- geometry ---------------------------------------------------------------------------

function width() { return canvas.clientWidth; }
function xOf(t) { return ((t - state.view.start) / (state.view.end - state.view.start)) * width(); }
function tOf(x) { return state.view.start + (x / width()) * (state.view.end - state.view.start); }

function layout() {
  const lanes = state.meta.lanes;
  let y = AXIS_H;
  state.lanesY = lanes.map((l) => {
    const h = LANE_PAD + EVENT_ROW + Math.max(1, l.depth) * DEPTH_H + LANE_PAD;
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
  const dpr = window.devicePixelRatio || 1;
  canvas.style.height = total + "px";
  canvas.style.width = "100%";
  canvas.width = Math.floor(wrap.clientWidth * dpr);
  canvas.height = Math.floor(total * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const labels = document.getElementById("labels");
  labels.replaceChildren();
  lanes.forEach((l, i) => {
    const div = document.createElement("div");
    div.className = "lane-label";
    div.style.height = state.lanesY[i][1] + "px";
    const name = document.createElement("span");
    name.textContent = l.name + " ";
    const tid = document.createElement("span");
    tid.className = "tid";
    tid.textContent = l.tid;
    div.append(name, tid);
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

// ---- data -------------------------------------------------------------------------------

function filterParams() {
  return {
    level: document.getElementById("level").value,
    target: document.getElementById("target").value,
    text: document.getElementById("text").value,
  };
}

/** Margin asked for on each side of the view, in view widths. */
const MARGIN_VIEWS = 1;

/** Whether the answer to `req` holds the current view at about the view's resolution. */
function covers(req) {
  if (!req || req.filters !== JSON.stringify(filterParams())) return false;
  const v = state.view;
  const nsPerPx = (v.end - v.start) / Math.max(1, width());
  const reqNsPerPx = (req.end - req.start) / req.width;
  return req.start <= v.start && req.end >= v.end && reqNsPerPx <= nsPerPx * 1.5 && reqNsPerPx >= nsPerPx / 3;
}

let fetchTimer = null;
/** Asks the server for the view, unless what the page holds already answers it. */
function requestWindow(force) {
  if (!force && covers(state.dataReq)) return;
  clearTimeout(fetchTimer);
  state.pending++;
  fetchTimer = setTimeout(fetchWindow, 16);
}

/** The whole recording at the canvas's width: what zooming out shows before the answer. */
async function fetchOverview() {
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

async function fetchWindow() {
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

function setStatus(text) { document.getElementById("perf").textContent = text; }

// ---- drawing ----------------------------------------------------------------------------

function hue(s) {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
  return h % 360;
}

function niceStep(ns) {
  const p = Math.pow(10, Math.floor(Math.log10(ns)));
  for (const m of [1, 2, 5, 10]) if (m * p >= ns) return m * p;
  return 10 * p;
}

function drawAxis(w) {
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

function drawLaneBackgrounds(w) {
  state.meta.lanes.forEach((l, i) => {
    const [y, h] = state.lanesY[i];
    ctx.fillStyle = i % 2 ? "#fbfbfd" : "#ffffff";
    ctx.fillRect(0, y, w, h);
    if (l.overwritten > 0) {
      // Before this thread's data starts, nothing is known: hatch it, so an overwritten
      // past is never mistaken for an idle one.
      const x = Math.min(w, Math.max(0, xOf(l.data_start)));
      if (x > 0) {
        ctx.save();
        ctx.beginPath();
        ctx.rect(0, y, x, h);
        ctx.clip();
        ctx.strokeStyle = "#e6d3b3";
        for (let k = -h; k < x; k += 8) {
          ctx.beginPath();
          ctx.moveTo(k, y + h);
          ctx.lineTo(k + h, y);
          ctx.stroke();
        }
        ctx.restore();
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
  });
}

function drawBars(w, laneIndex, lane, y) {
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
      continue;
    }
    const followed = state.follow && state.follow.span === bar.span;
    const selected = state.selected && state.selected.kind === "span" && state.selected.id === bar.span;
    ctx.fillStyle = `hsl(${hue(bar.name)}, 55%, ${followed || selected ? 55 : 72}%)`;
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
      ctx.fillStyle = "#1d2330";
      ctx.fillText(bar.name, Math.max(x0, 0) + 3, by + DEPTH_H - 3);
      ctx.restore();
    }
    state.drawn.push({ x: x0, y: by, w: bw, h: DEPTH_H, kind: "span", span: bar.span, lane: laneIndex });
  }
}

function drawEvents(w, laneIndex, lane, y) {
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

function eventPoint(lane, t) {
  const [y] = state.lanesY[lane];
  return [xOf(t), y + LANE_PAD + EVENT_ROW / 2];
}

function arrow(x0, y0, x1, y1, colour) {
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

function drawObject() {
  const o = state.object;
  if (!o) return;
  let prev = null;
  for (const r of o.records) {
    if (r.lane == null) continue;
    const [x, y] = eventPoint(r.lane, r.t);
    ctx.strokeStyle = "#7b2cbf";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(x, y, 7, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.lineWidth = 1;
    if (prev) arrow(prev[0], prev[1], x, y, r.handover ? "#e85d04" : "#7b2cbf");
    prev = [x, y];
  }
}

function entryY(e) {
  const [y] = state.lanesY[e.lane];
  return y + LANE_PAD + EVENT_ROW + e.d * DEPTH_H + DEPTH_H / 2;
}

function drawFollow() {
  const f = state.follow;
  if (!f) return;
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

function drawTrigger(w) {
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

function drawRuler() {
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

function drawSearchHit() {
  const h = state.hits[state.hitIndex];
  if (!h || h.lane == null) return;
  const [x, y] = eventPoint(h.lane, h.t);
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 2;
  ctx.strokeRect(x - 7, y - 8, 14, 16);
  ctx.lineWidth = 1;
}

function drawLanes(data, w) {
  data.lanes.forEach((lane, i) => {
    const [y] = state.lanesY[i];
    drawBars(w, i, lane, y);
    drawEvents(w, i, lane, y);
  });
}

/** Notes when an input happened, so that the redraw it causes can be timed. */
function markInput(e) {
  state.inputAt = e.timeStamp;
  state.lastInput = e.timeStamp;
}

function draw() {
  if (!state.meta) return;
  const t0 = performance.now();
  const w = width();
  ctx.clearRect(0, 0, w, canvas.clientHeight);
  drawLaneBackgrounds(w);
  drawAxis(w);
  state.drawn = [];
  // The detailed answer where it reaches; the overview (coarser) around it, so that no
  // part of the view waits for the server.
  const dataFrom = state.dataReq ? xOf(state.dataReq.start) : 0;
  const dataTo = state.dataReq ? xOf(state.dataReq.end) : 0;
  const overviewCurrent = state.overviewReq && state.overviewReq.filters === JSON.stringify(filterParams());
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
  if (state.data) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(dataFrom, 0, dataTo - dataFrom, canvas.clientHeight);
    ctx.clip();
    drawLanes(state.data, w);
    ctx.restore();
  }
  drawFollow();
  drawObject();
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

// ---- details ----------------------------------------------------------------------------

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function dl(rows) {
  const d = el("dl");
  for (const [k, v] of rows) {
    if (v == null || v === "") continue;
    d.append(el("dt", k));
    const dd = el("dd");
    if (v instanceof Node) dd.append(v);
    else dd.textContent = String(v);
    d.append(dd);
  }
  return d;
}

function fieldList(fields) {
  const d = el("dl", null, "fields");
  for (const f of fields) {
    d.append(el("dt", f.name));
    const dd = el("dd");
    const b = el("button", f.value, "value");
    b.title = "follow " + f.name + "=" + f.value + " across threads (" + f.type + ")";
    b.dataset.field = f.name;
    b.addEventListener("click", () => selectObject(f.name, f.value));
    dd.append(b);
    if (f.truncated) dd.append(el("span", " (truncated)", "hint"));
    d.append(dd);
  }
  return d;
}

function spanLink(s) {
  const b = el("button", s.name + " #" + s.span, "span-link");
  b.addEventListener("click", () => showSpan(s.span, true));
  return b;
}

async function showRecord(id) {
  const r = await (await fetch(api("/records/" + id))).json();
  state.selected = { kind: "event", id };
  const panel = document.getElementById("details");
  panel.replaceChildren();
  panel.append(el("h3", r.title));
  panel.append(dl([
    ["kind", r.kind], ["level", r.level], ["target", r.target],
    ["at", r.file ? r.file + ":" + (r.line ?? "?") : null],
    ["thread", r.thread + " (tid " + r.tid + ")"], ["time", fullWallClock(r.ts)],
  ]));
  panel.append(el("h4", "fields"));
  panel.append(fieldList(r.fields));
  if (r.spans.length) {
    panel.append(el("h4", "span stack (outermost first)"));
    const ol = el("ol", null, "stack");
    for (const s of r.spans) {
      const li = el("li");
      li.append(spanLink(s));
      ol.append(li);
    }
    panel.append(ol);
  }
  draw();
  return r;
}

async function showSpan(span, follow) {
  const s = await (await fetch(api("/spans/" + span))).json();
  state.selected = { kind: "span", id: span };
  const panel = document.getElementById("details");
  panel.replaceChildren();
  panel.append(el("h3", "span " + s.name + " #" + s.span));
  const total = s.entries.reduce((a, e) => a + (e.e - e.b), 0);
  const threads = [...new Set(s.entries.map((e) => e.thread))];
  panel.append(dl([
    ["level", s.level], ["target", s.target], ["at", s.file ? s.file + ":" + (s.line ?? "?") : null],
    ["created on", s.created_on], ["entered", s.entries.length + "× on " + threads.join(", ")],
    ["time inside", fmtDuration(total)],
    ["first entry", s.entries.length ? fmtDuration(s.entries[0].e - s.entries[0].b) : null],
  ]));
  if (s.parent) panel.append(dl([["parent", spanLink(s.parent)]]));
  if (s.stack && s.stack.length) {
    panel.append(el("h4", "span stack when first entered (outermost first)"));
    const ol = el("ol", null, "stack");
    for (const x of s.stack) {
      const li = el("li");
      li.append(spanLink(x));
      ol.append(li);
    }
    panel.append(ol);
  }
  panel.append(el("h4", "fields"));
  panel.append(fieldList(s.fields));
  for (const [label, list] of [["follows", s.follows], ["followed by", s.followed_by]]) {
    if (list.length) {
      panel.append(el("h4", label));
      for (const l of list) panel.append(spanLink(l));
    }
  }
  const b = el("button", follow ? "stop following" : "follow this span across threads", "follow");
  b.addEventListener("click", () => {
    state.follow = state.follow && state.follow.span === s.span ? null : s;
    showSpan(s.span, !!state.follow);
  });
  panel.append(el("br"), b);
  if (follow) {
    state.follow = s;
    // The spans this one follows from, or that follow from it, for their arrows.
    const links = [...s.follows.map((l) => ["follows", l]), ...s.followed_by.map((l) => ["followed_by", l])];
    s.linked = await Promise.all(links.slice(0, 16).map(async ([dir, l]) => ({
      dir, span: await (await fetch(api("/spans/" + l.span))).json(),
    })));
  }
  draw();
  return s;
}

async function selectObject(field, value) {
  const o = await (await fetch(api("/object", { field, value }))).json();
  state.object = o;
  const sec = document.getElementById("object");
  sec.hidden = false;
  const threads = new Set(o.records.map((r) => r.thread));
  document.getElementById("object-title").textContent =
    `${field} = ${value}: ${o.total} records on ${threads.size} thread(s), ${o.handovers} hand-over(s)` +
    (o.truncated ? ` (the newest ${o.records.length} listed)` : "");
  const body = document.querySelector("#object-list tbody");
  body.replaceChildren();
  for (const r of o.records) {
    const tr = el("tr", null, r.handover ? "handover" : "");
    tr.dataset.id = r.id;
    // The axis's clock (UTC, to the ns), and the offset into the recording beside it.
    tr.append(el("td", wallClock(r.t, 1)), el("td", fmtOffset(r.t), "offset"));
    tr.append(el("td", r.thread), el("td", r.span || ""), el("td", r.title));
    tr.append(el("td", r.handover ? "⇄ from " + r.from : "", "handover-mark"));
    tr.addEventListener("click", () => { centerOn(r.t); showRecord(r.id); });
    body.append(tr);
  }
  // Bring the accesses inside the current view to the top of the list.
  const firstInView = o.records.findIndex((r) => r.t >= state.view.start && r.t <= state.view.end);
  if (firstInView >= 0) {
    const row = body.children[firstInView];
    document.getElementById("object").scrollTop = row.offsetTop - 48;
  }
  draw();
  return o;
}

// ---- navigation -------------------------------------------------------------------------

const MIN_SPAN = 50; // ns

function setView(start, end) {
  const full = Math.max(1, state.meta.end);
  const margin = full * 0.05 + 1000;
  let span = Math.max(MIN_SPAN, Math.min(end - start, full + 2 * margin));
  start = Math.max(-margin, Math.min(start, full + margin - span));
  state.view = { start, end: start + span };
  draw();
  requestWindow();
}

function zoom(factor, atX) {
  const t = tOf(atX == null ? width() / 2 : atX);
  const { start, end } = state.view;
  setView(t - (t - start) * factor, t + (end - t) * factor);
}

function pan(fraction) {
  const d = (state.view.end - state.view.start) * fraction;
  setView(state.view.start + d, state.view.end + d);
}

function centerOn(t) {
  const half = (state.view.end - state.view.start) / 2;
  setView(t - half, t + half);
}

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

function click(e) {
  const rect = canvas.getBoundingClientRect();
  const x = e.clientX - rect.left;
  const y = e.clientY - rect.top;
  const inside = (d) => x >= d.x && x <= d.x + d.w && y >= d.y && y <= d.y + d.h;
  const hit = state.drawn.find((d) => d.kind === "event" && inside(d)) || state.drawn.find((d) => d.kind === "span" && inside(d));
  if (!hit) return;
  if (hit.kind === "event") showRecord(hit.id);
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

// ---- start ------------------------------------------------------------------------------

function banner(meta) {
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

async function main() {
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
