// The page's layout: lane heights and labels for the thread view and the task view, and the
// canvas sized to them.
import { AXIS_H, DEPTH_H, EVENT_ROW, GROUP_H, LANE_PAD, MIN_MAIN_H, RESERVED_BELOW, canvas, ctx, laneHidden, state, toggleProcess, visibleLanes, wrap } from "./timeline-state.js";

/** The first lane of its process's group (where the group's toggle goes). */
function groupStart(lanes, i) {
  return lanes[i].process != null && (i === 0 || lanes[i - 1].process !== lanes[i].process);
}

export function layout() {
  if (state.mode === "tasks") return layoutTasks();
  state.scrollY = 0;
  canvas.style.position = "";
  wrap.style.height = "";
  const lanes = state.meta.lanes;
  const y = stackLanes(lanes.map((l, i) => {
    if (laneHidden(i)) return groupStart(lanes, i) ? GROUP_H : 0;
    return laneHeight(l);
  }));
  const total = Math.max(y + 10, wrap.clientHeight);
  sizeCanvas(total);
  const labels = document.getElementById("labels");
  labels.style.height = "";
  labels.style.position = "";
  labels.replaceChildren();
  const several = (state.meta.processes || []).length > 1;
  lanes.forEach((l, i) => {
    const div = document.createElement("div");
    div.className = "lane-label";
    div.style.height = state.lanesY[i][1] + "px";
    if (several && groupStart(lanes, i)) {
      // The process's fold toggle, on its first lane.
      const p = state.meta.processes[l.process];
      const folded = state.collapsed.has(l.process);
      const t = document.createElement("button");
      t.className = "fold";
      t.dataset.process = l.process;
      const n = lanes.filter((x) => x.process === l.process).length;
      t.textContent = folded ? `▸ ${p.label} (${n} threads)` : "▾";
      t.title = folded ? "Show this process's threads" : `Fold ${p.label}'s ${n} threads`;
      t.addEventListener("click", () => toggleProcess(l.process));
      div.append(t);
      if (folded) {
        div.classList.add("folded");
        labels.appendChild(div);
        return;
      }
    } else if (laneHidden(i)) {
      div.hidden = true;
      labels.appendChild(div);
      return;
    }
    // The name gives way (ellipsis) before the tid: two workers named alike stay apart.
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = l.name + " ";
    const tid = document.createElement("span");
    tid.className = "tid";
    tid.textContent = l.tid;
    div.append(name, tid);
    const stack = (state.meta.stacks || []).find((s) => s.tid === l.tid);
    if (stack) {
      // Its native stack, in the details panel.
      const b = document.createElement("button");
      b.className = "stack-link";
      b.textContent = stack.answered ? "stack" : "no stack";
      b.title = stack.headline;
      b.addEventListener("click", () =>
        window.dispatchEvent(new CustomEvent("flightrec:stack", { detail: l.tid })));
      div.appendChild(b);
    }
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

function sizeCanvas(cssHeight) {
  const dpr = window.devicePixelRatio || 1;
  canvas.style.height = cssHeight + "px";
  canvas.style.width = "100%";
  canvas.width = Math.floor(wrap.clientWidth * dpr);
  canvas.height = Math.floor(cssHeight * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
}

/** A lane's height: the event row, and a row per depth of spans (for a task, the first is
 * its polls). */
function laneHeight(l) {
  return LANE_PAD + EVENT_ROW + Math.max(1, l.depth) * DEPTH_H + LANE_PAD;
}

/** Stacks lanes of these heights below the axis (`state.lanesY`), and makes the timeline as
 * tall as they are, up to what the window allows (then it scrolls), so that what follows it
 * (the object list) starts right below the last lane. Returns where the lanes end. */
function stackLanes(heights) {
  let y = AXIS_H;
  state.lanesY = heights.map((h) => {
    const r = [y, h];
    y += h;
    return r;
  });
  const main = document.getElementById("main");
  const room = Math.max(MIN_MAIN_H, window.innerHeight - main.getBoundingClientRect().top - RESERVED_BELOW);
  main.style.height = Math.max(MIN_MAIN_H, Math.min(y + 10, room)) + "px";
  return y;
}

/** The task view: ten thousand lanes cannot each be a canvas row and a label element. The
 * scroll area is as tall as every lane; the canvas stays at its top (sticky) as tall as
 * the screen, and draws the lanes scrolled into it; labels exist for those lanes only. */
function layoutTasks() {
  const y = stackLanes((state.tasks || []).map(laneHeight));
  const scroller = wrap.parentElement;
  wrap.style.height = (y + 10) + "px";
  canvas.style.position = "sticky";
  canvas.style.top = "0px";
  sizeCanvas(scroller.clientHeight);
  const labels = document.getElementById("labels");
  labels.style.position = "relative";
  labels.style.height = (y + 10) + "px";
  state.scrollY = scroller.scrollTop;
  placeTaskLabels();
}

/** Labels for the task lanes on screen only. */
export function placeTaskLabels() {
  const labels = document.getElementById("labels");
  labels.replaceChildren();
  const [first, last] = visibleLanes();
  for (let i = first; i < last; i++) {
    const t = state.tasks[i];
    const div = document.createElement("div");
    div.className = "lane-label task-label";
    div.style.position = "absolute";
    div.style.left = "0";
    div.style.right = "0";
    div.style.top = state.lanesY[i][0] + "px"; // from the padding edge: the axis row included
    div.style.height = state.lanesY[i][1] + "px";
    const group = state.taskOrder === "name" && (i === 0 || state.tasks[i - 1].name !== t.name);
    const name = document.createElement("span");
    name.textContent = t.label + " ";
    if (group) div.classList.add("group-start");
    const polls = document.createElement("span");
    polls.className = "tid";
    polls.textContent = t.polls + (t.polls === 1 ? " poll" : " polls") + (t.open ? " · open" : "");
    div.append(name, polls);
    div.title = t.label + " (" + t.polls + " polls on " + t.workers.map((w) => state.meta.lanes[w]?.name ?? "?").join(", ") + ")";
    div.dataset.task = t.task;
    labels.appendChild(div);
  }
}
