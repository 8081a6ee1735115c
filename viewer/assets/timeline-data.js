// The server's answers the page holds: the window around the view, the overview of the
// whole recording, and the task lanes' layout.
import { getJSON, noteProblem } from "./timeline-api.js";
import { MARGIN_VIEWS, covers, filterParams, overviewCovers, viewParams } from "./timeline-coverage.js";
import { placeTaskLabels } from "./timeline-layout.js";
import { drawNow, requestDraw } from "./timeline-render.js";
import { setStatus } from "./timeline-status.js";
import { state, width } from "./timeline-state.js";

let fetchTimer = null;

/** Asks the server for the view, unless what the page holds already answers it. */
export function requestWindow(force) {
  if (!force && covers(state.dataReq)) return;
  clearTimeout(fetchTimer);
  state.pending++;
  fetchTimer = setTimeout(fetchWindow, 16);
}

/** Whether nothing the page asked for is still on its way. */
export function quiet() {
  return state.pending === 0 && state.overviewPending === 0 && state.data != null;
}

/** Wakes those waiting for the page to be quiet (`window.flightrecView.settled`). */
function wakeIfQuiet() {
  if (!quiet()) return;
  const ws = state.settledWaiters;
  state.settledWaiters = [];
  ws.forEach((f) => f());
}

/** The whole recording at the canvas's width: what zooming out shows before the answer. */
export async function fetchOverview() {
  const full = Math.max(1, state.meta.end);
  const view = viewParams();
  const req = { start: -full * 0.05, end: full * 1.05, width: Math.max(1, Math.round(width())), filters: JSON.stringify(filterParams()), view };
  let answer;
  state.overviewPending++;
  try {
    answer = await getJSON("/window", {
      start: Math.floor(req.start), end: Math.ceil(req.end), width: req.width, ...view, ...filterParams(),
    });
  } catch (e) {
    state.overviewPending--;
    noteProblem("overview", e);
    setStatus("error: " + e.message);
    wakeIfQuiet();
    return;
  }
  state.overviewPending--;
  if (view.view === state.mode) {
    // (Else the view changed meanwhile: the answer is for lanes no longer shown.)
    state.overview = answer;
    state.overviewReq = req;
    requestDraw();
  }
  wakeIfQuiet();
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
    view: viewParams(),
  };
  const params = { start: req.start, end: req.end, width: req.width, ...req.view, ...filterParams() };
  try {
    const data = await getJSON("/window", params);
    if (seq === state.fetchSeq && req.view.view === state.mode) {
      state.data = data;
      state.dataReq = req;
      // The answer refines what the input drew: drawn as it lands, and timed.
      drawNow();
      if (input != null) state.refines.push(performance.now() - input);
    }
  } catch (e) {
    noteProblem("window", e);
    setStatus("error: " + e.message);
  } finally {
    state.pending = Math.max(0, state.pending - 1);
    if (seq === state.fetchSeq) {
      state.pending = 0;
      wakeIfQuiet();
    }
  }
}

/** Fetches the task lanes in `order` (their layout: labels, lives, depths). */
export async function loadTasks(order) {
  const answer = await getJSON("/tasks", { order });
  state.tasks = answer.tasks;
  state.taskOrder = order;
  state.taskPos = new Map(answer.tasks.map((t, i) => [t.task, i]));
}

/** The task lanes scrolled: labels and drawing follow at once, the lanes' contents when the
 * server answers (only for lanes the page does not hold yet). */
export function scrollTasks() {
  if (state.mode !== "tasks") return;
  const t0 = performance.now();
  state.scrollY = document.getElementById("timeline-wrap").scrollTop;
  placeTaskLabels();
  drawNow();
  state.scrolls.push(performance.now() - t0);
  requestWindow();
  if (!overviewCovers()) fetchOverview();
}
