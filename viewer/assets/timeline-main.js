// Start-up, the switch between threads and tasks, and what the page answers the browser test
// (and a curious user, from the console) through `window.flightrecView`.
import { ApiError, getJSON, noteProblem } from "./timeline-api.js";
import { fetchOverview, loadTasks, quiet, requestWindow, scrollTasks } from "./timeline-data.js";
import { pickFinding, showFindings } from "./timeline-findings.js";
import "./timeline-input.js";
import { layout } from "./timeline-layout.js";
import { pan, setView, zoom } from "./timeline-nav.js";
import { selectObject, showRecord } from "./timeline-panels.js";
import { requestDraw } from "./timeline-render.js";
import { FLAGS, MIN_MAIN_H, canvas, fmtDuration, laneTop, state, visibleLanes, width } from "./timeline-state.js";

// ---- threads or tasks -------------------------------------------------------------------

/** Switches the lanes between threads and tasks, keeping the view, the selection and the
 * followed object. */
export async function setMode(mode, order) {
  order = order || state.taskOrder;
  if (mode === "tasks" && (!state.tasks || order !== state.taskOrder)) {
    try {
      await loadTasks(order);
    } catch (e) {
      noteProblem("tasks", e);
      showBannerError("Cannot list the tasks: " + e.message);
      return;
    }
  }
  state.mode = mode;
  state.data = null;
  state.dataReq = null;
  state.overview = null;
  state.overviewReq = null;
  document.getElementById("mode-threads").classList.toggle("on", mode === "threads");
  document.getElementById("mode-tasks").classList.toggle("on", mode === "tasks");
  document.getElementById("order-label").hidden = mode !== "tasks";
  document.getElementById("order").value = state.taskOrder;
  document.getElementById("proposal").hidden = true;
  const scroller = document.getElementById("timeline-wrap");
  scroller.scrollTop = 0;
  layout();
  // The object list names tasks or spans, as the lanes do.
  if (state.object) await selectObject(state.object.field, state.object.value);
  requestDraw();
  requestWindow(true);
  fetchOverview();
}

document.getElementById("mode-threads").addEventListener("click", () => setMode("threads"));
document.getElementById("mode-tasks").addEventListener("click", () => setMode("tasks"));
document.getElementById("order").addEventListener("change", (e) => setMode("tasks", e.target.value));
document.getElementById("proposal-go").addEventListener("click", () => setMode("tasks"));
document.getElementById("timeline-wrap").addEventListener("scroll", () => scrollTasks(), { passive: true });

// ---- start ------------------------------------------------------------------------------

/** A banner that says what could not be done. */
function showBannerError(text) {
  const b = document.getElementById("banner");
  b.textContent = text;
  b.hidden = false;
  b.classList.add("bad");
}

export function banner(meta) {
  const t = meta.trigger;
  const b = document.getElementById("banner");
  const deadlocks = (meta.deadlocks || []).map((d) => "deadlock: " + d.description);
  const several = (meta.processes || []).length > 1;
  const processes = several ? meta.processes.map((p) => `${p.label}: ${p.trigger || "no trigger"}`) : [];
  processControls(meta);
  if (meta.several_hosts) {
    processes.push("from several hosts: aligned on their wall clocks, only as good as the hosts' clock sync");
  }
  const history = historyLine(meta.history);
  if (!t && !deadlocks.length && !processes.length && !meta.loading && !history) {
    // Nothing to say (any more: a read's progress is over).
    b.hidden = true;
    return;
  }
  const lines = processes.length ? processes : t ? [t.description] : [];
  if (t && t.thread) lines.push("thread: " + t.thread);
  for (const s of (t && t.stuck) || []) {
    lines.push(`stuck: ${s.name} silent for ${fmtDuration(s.silent_ns)}` +
      (s.open_spans.length ? " inside " + s.open_spans.join(" › ") : ""));
  }
  lines.push(...deadlocks);
  if (history) lines.push(history);
  if (meta.loading) {
    lines.push(readingLine(meta));
  }
  b.textContent = lines.join("\n");
  b.hidden = false;
  if (deadlocks.length || (t && ["panic", "crash", "stall"].includes(t.reason))) b.classList.add("bad");
}

/** What the banner says of the history on disk read with the ring (null: nothing to say). */
function historyLine(h) {
  if (!h || (!h.attached_chunks && !h.skipped_chunks)) return null;
  const read = `history on disk: ${h.attached_chunks.toLocaleString("en")} chunks read with the ring`;
  if (!h.skipped_chunks) return read;
  return `${read}; ${h.skipped_chunks.toLocaleString("en")} left out (CPU budget, disk, or ` +
    "recycled first): a thread is shown from its newest hole on";
}

/** What the banner says while recordings are read: how far, for a single one. */
function readingLine(meta) {
  const p = meta.progress;
  if (!p) {
    return `reading ${meta.processes.length} recordings: each lane shows where its thread was busy; the details follow when they are read`;
  }
  const meanwhile = "each lane shows where its thread was busy meanwhile";
  if (p.records_expected && p.records_read >= p.records_expected) {
    return `all ${p.records_read.toLocaleString("en")} records read, being arranged; ${meanwhile}`;
  }
  const of = p.records_expected ? ` of ${p.records_expected.toLocaleString("en")}` : "";
  return `reading the records: ${p.records_read.toLocaleString("en")}${of} so far; ${meanwhile}`;
}

/** The dump id in the page's address: `1+2`, or with shifts, `1+2@-1500000`. */
function pageIds() {
  const id = decodeURIComponent(location.pathname.split("/").pop());
  return id.split("+").map((p) => {
    const [file, shift] = p.split("@");
    return { file, shift: Number(shift || 0) };
  });
}

/** For several recordings: each one's clock, its shift, and a way to shift it by an offset
 * measured between hosts (the page reopens with the recording moved). */
function processControls(meta) {
  const box = document.getElementById("processes");
  const procs = meta.processes || [];
  if (procs.length < 2) return;
  const ids = pageIds();
  box.replaceChildren();
  const note = document.createElement("span");
  note.textContent = meta.several_hosts
    ? "Aligned on each host's wall clock: only as good as the hosts' clock sync (often ±1 ms or worse). "
    : "Aligned on one host's wall clock. ";
  box.append(note);
  procs.forEach((p, k) => {
    const row = document.createElement("span");
    row.className = "process";
    row.dataset.process = k;
    const label = document.createElement("span");
    label.textContent = `${p.label} (clock ${p.clock}${p.shift_ns ? ", shifted " + fmtDuration(p.shift_ns) : ""})`;
    const input = document.createElement("input");
    input.type = "number";
    input.step = "any";
    input.placeholder = "shift, ms";
    input.value = p.shift_ns ? String(p.shift_ns / 1e6) : "";
    input.title = "Move this process on the timeline by a measured clock offset (ms; negative: earlier)";
    const go = document.createElement("button");
    go.type = "button";
    go.textContent = "shift";
    go.addEventListener("click", () => {
      const ns = Math.round(Number(input.value || 0) * 1e6);
      if (!Number.isFinite(ns) || !ids[k]) return;
      ids[k].shift = ns;
      const id = ids.map((i) => (i.shift ? `${i.file}@${i.shift}` : i.file)).join("+");
      // The id as it is: "+", "@" and "-" need no escaping in a path.
      location.assign(location.pathname.replace(/[^/]*$/, id) + location.search);
    });
    row.append(label, input, go);
    box.append(row);
  });
  box.hidden = false;
}

/** The header's count of what ran on the threads: tasks only where there are async tasks
 * (some polled on several threads, or tokio's); a threaded program's root spans are its
 * requests. */
function actorsTitle(tasks) {
  if (!tasks.count) return "";
  return tasks.hop || tasks.tokio ? ` · ${tasks.count} tasks` : ` · ${tasks.count} requests`;
}

function applyMeta(meta) {
  state.meta = meta;
  state.origin = BigInt(meta.origin);
  FLAGS.startsBeforeData = meta.constants.flags.starts_before_data;
  FLAGS.openAtEnd = meta.constants.flags.open_at_end;
  document.getElementById("title").textContent =
    meta.processes.length > 1
      ? `${meta.processes.length} processes: ${meta.service} · ${meta.host} · ${meta.loading ? "reading" : meta.records} records · ${meta.lanes.length} threads`
      : `${meta.service} · pid ${meta.pid} · ${meta.host} · ${meta.loading ? "reading" : meta.records} records · ${meta.lanes.length} threads` + actorsTitle(meta.tasks);
  document.title = "flightrec: " + meta.service + " " + meta.pid;
  banner(meta);
  showFindings(meta, setMode);
}

/** Recordings opened together are still being read: what is drawn is their skeleton. Ask
 * again until the whole model answers, then redraw the same view from it. */
async function awaitLoaded() {
  for (;;) {
    await new Promise((res) => setTimeout(res, 300));
    let meta;
    try {
      meta = await getJSON("/meta");
    } catch (e) {
      // The viewer did not answer this time: ask again. It answered no: say so.
      if (e instanceof ApiError && e.status === 0) continue;
      noteProblem("meta", e);
      showBannerError("Cannot open these recordings: " + e.message);
      return;
    }
    if (meta.loading) {
      // A single recording's read says how far it is.
      if (meta.progress) banner(meta);
      continue;
    }
    document.getElementById("banner").classList.remove("bad");
    applyMeta(meta);
    if (meta.tasks.hop && state.mode !== "tasks") {
      document.getElementById("proposal-text").textContent =
        `${meta.tasks.count} tasks or requests ran here, polled on more than one thread: ` +
        "the task view shows each of them on a lane of its own.";
      document.getElementById("proposal").hidden = false;
    }
    layout();
    fetchOverview();
    requestWindow(true);
    const ws = state.loadedWaiters;
    state.loadedWaiters = [];
    ws.forEach((f) => f());
    return;
  }
}

/** Where the page opens: from the latest point at which a thread's older records were
 * overwritten, where every thread's surviving history is whole, to the end. Before it the
 * recording is partial, and a lone early record (a start-up line on a thread that then
 * idled) would stretch the axis over seconds that are all hatched. Threads with records
 * before the opening are named in the footer; `0` shows everything. */
function openingRange(meta) {
  const end = Math.max(1, meta.end);
  const starts = meta.lanes.filter((l) => l.overwritten > 0).map((l) => l.data_start);
  const whole = starts.length ? Math.max(...starts) : 0;
  if (!(whole > 0 && whole < end)) return [0, end];
  const start = Math.max(0, whole - (end - whole) * 0.02);
  const earlier = meta.lanes.filter((l) => l.data_start < start).length;
  if (earlier) {
    document.getElementById("earlier").textContent =
      `· ${earlier} thread${earlier === 1 ? " has" : "s have"} records before this view (0: show everything)`;
  }
  return [start, end];
}

export async function main() {
  let meta;
  try {
    meta = await getJSON("/meta");
  } catch (e) {
    noteProblem("meta", e);
    showBannerError("Cannot open this dump: " + e.message);
    return;
  }
  applyMeta(meta);
  if (meta.loading) awaitLoaded();
  const params = new URLSearchParams(location.search);
  if (params.get("order") === "name") state.taskOrder = "name";
  if (params.get("view") === "tasks" && meta.tasks.count > 0) {
    try {
      await loadTasks(state.taskOrder);
    } catch (e) {
      noteProblem("tasks", e);
      showBannerError("Cannot list the tasks: " + e.message);
      return;
    }
    state.mode = "tasks";
    document.getElementById("mode-threads").classList.remove("on");
    document.getElementById("mode-tasks").classList.add("on");
    document.getElementById("order-label").hidden = false;
    document.getElementById("order").value = state.taskOrder;
  } else if (meta.tasks.hop) {
    // Requests polled by several workers: their threads tell less than their tasks.
    document.getElementById("proposal-text").textContent =
      `${meta.tasks.count} tasks or requests ran here, polled on more than one thread: ` +
      "the task view shows each of them on a lane of its own.";
    document.getElementById("proposal").hidden = false;
  }
  layout();
  window.addEventListener("resize", () => { layout(); requestDraw(); requestWindow(true); fetchOverview(); });
  window.addEventListener("flightrec:relayout", () => { layout(); requestDraw(); });
  fetchOverview();
  const [openStart, openEnd] = openingRange(meta);
  setView(openStart, openEnd);
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

/** The next animation frame: by then, every draw requested before it has happened. */
const nextFrame = () => new Promise((res) => requestAnimationFrame(() => res()));

// What the browser test (and a curious user, from the console) can ask of the page: a small
// query interface. Answers are copies, so the page's state is not a test interface.
window.flightrecView = {
  /** Whether the meta has arrived, and a window answer too. */
  ready() { return { meta: state.meta != null, data: state.data != null }; },
  /** What the first drawing showed: whether still reading, lanes, clumps per lane. */
  firstPaint() {
    return {
      loading: !!state.meta.loading,
      lanes: state.meta.lanes.length,
      clumps: state.data.lanes.map((l) => l.bars.filter((b) => Array.isArray(b)).length),
    };
  },
  /** The recording as the page knows it (a copy of the server's meta answer). */
  meta() { return state.meta ? structuredClone(state.meta) : null; },
  /** The time range shown (relative ns). */
  view() { return { ...state.view }; },
  /** What the details panel shows: {kind, id}, or null. */
  selected() { return state.selected ? { ...state.selected } : null; },
  /** The object followed, or null: its field, value and records (a copy). */
  object() {
    const o = state.object;
    return o ? { field: o.field, value: o.value, total: o.total, records: structuredClone(o.records) } : null;
  },
  /** API errors the page showed, in order: {what, status, message}. */
  problems() { return state.problems.slice(); },
  /** The lanes' heights, and which lanes have something drawn. */
  lanes() {
    return {
      heights: state.lanesY.map((r) => r[1]),
      drawn: [...new Set(state.drawn.filter((d) => d.lane != null).map((d) => d.lane))],
    };
  },
  /** The trigger marker's label on the axis, or null. */
  triggerLabel() { return state.triggerLabel ? { ...state.triggerLabel } : null; },
  /** Items drawn in the last frame. */
  drawnCount() { return state.drawn.length; },
  /** Window requests sent so far. */
  windowRequests() { return state.fetchSeq; },
  /** Resolves once the recordings are read (at once unless several are opened together),
   * no window or overview request is on its way, and the latest answers are drawn: what is
   * drawn then stays put until the next input. */
  async settled() {
    if (state.meta && state.meta.loading) await new Promise((res) => state.loadedWaiters.push(res));
    for (;;) {
      if (!quiet()) await new Promise((res) => state.settledWaiters.push(res));
      await nextFrame();
      if (quiet()) return;
    }
  },
  /** Drawn events, in page coordinates (for clicking them like a user). */
  drawnEvents() {
    const rect = canvas.getBoundingClientRect();
    return state.drawn.filter((d) => d.kind === "event").map((d) => ({
      id: d.id, lane: d.lane, title: d.title, x: rect.left + d.x + d.w / 2, y: rect.top + d.y + d.h / 2,
    }));
  },
  highlighted() { return state.object ? state.object.records.map((r) => r.id) : []; },
  /** The records a picked finding marked (its evidence), by id. */
  marked() { return state.marked.map((r) => r.id); },
  /** Shows finding `i`'s evidence, as clicking its row does. */
  pickFinding,
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
  /** Locks as drawn: holds, waits and a deadlock's arrows, with their lanes' names. */
  drawnLocks() {
    const lanes = state.meta.lanes;
    const rect = canvas.getBoundingClientRect();
    return state.drawn.filter((d) => ["hold", "wait", "cycle"].includes(d.kind)).map((d) => ({
      kind: d.kind, lane: lanes[d.lane]?.name, lock: d.lock || d.waitsFor, holder: d.holder != null ? lanes[d.holder]?.name : null,
      b: d.b, e: d.e, open: d.open, x: rect.left + d.x, w: d.w, y: rect.top + d.y, h: d.h,
    }));
  },
  /** The lanes now shown: "threads" or "tasks". */
  mode() { return state.mode; },
  setMode,
  /** Opens record `id`'s details, as clicking it does. */
  showRecord,
  /** Task lanes on screen, with their polls as drawn (worker lane, x range) and where their
   * labels are, in page coordinates. */
  visibleTasks() {
    if (state.mode !== "tasks") return [];
    const rect = canvas.getBoundingClientRect();
    const [first, last] = visibleLanes();
    const labels = [...document.querySelectorAll("#labels .task-label")];
    const out = [];
    for (let i = first; i < last; i++) {
      const t = state.tasks[i];
      const label = labels.find((l) => Number(l.dataset.task) === t.task);
      out.push({
        position: i, task: t.task, span: t.span, label: t.label, name: t.name, start: t.start, end: t.end,
        top: rect.top + laneTop(i),
        labelTop: label ? label.getBoundingClientRect().top : null,
        polls: state.drawn.filter((d) => d.kind === "poll" && d.lane === i)
          .map((d) => ({ worker: d.worker, b: d.b, e: d.e, x: rect.left + d.x, w: d.w, y: rect.top + d.y })),
        clumps: state.drawn.filter((d) => d.kind === "clump" && d.lane === i).map((d) => ({ row: d.d, b: d.b, e: d.e })),
        events: state.drawn.filter((d) => d.kind === "event" && d.lane === i).map((d) => d.id),
        life: state.drawn.filter((d) => d.kind === "life" && d.lane === i).map((d) => ({ b: d.b, e: d.e, x: rect.left + d.x, w: d.w }))[0] || null,
      });
    }
    return out;
  },
  taskCount() { return state.tasks ? state.tasks.length : 0; },
  /** Scrolls the task lanes so that lane `position` is at the top. */
  scrollToTask(position) {
    const scroller = document.getElementById("timeline-wrap");
    scroller.scrollTop = state.lanesY[position][0] - 24;
    scrollTasks();
  },
  /** ms to redraw after each scroll of the task lanes. */
  scrollTimes() { return state.scrolls.slice(); },
  firstRenderMs() { return state.firstRenderMs; },
  /** ms from each pan or zoom input to its redraw, in order. */
  frameTimes() { return state.frames.slice(); },
  /** ms from each input that needed the server to the drawing of its answer. */
  refineTimes() { return state.refines.slice(); },
  zoom, pan, setView,
};

main();
