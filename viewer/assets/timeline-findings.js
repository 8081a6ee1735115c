// The findings list: the bugs the recording shows (the server's `meta.findings`, worst
// first), behind a count in the header. Picking one shows its evidence: on the lanes it
// reads best on (a task's finding on task lanes), over the stretch of time its records
// cover, its object followed, its records marked and its last record's details open.
import { setView } from "./timeline-nav.js";
import { revealTasks, selectObject, showRecord } from "./timeline-panels.js";
import { requestDraw } from "./timeline-render.js";
import { state } from "./timeline-state.js";

/** Main's switch between thread and task lanes (passed in: main imports this module). */
let switchMode = async () => {};

/** Fills the header's count and the list from `meta`; `setMode` switches the lanes. */
export function showFindings(meta, setMode) {
  switchMode = setMode;
  const found = meta.findings || [];
  const button = document.getElementById("findings-toggle");
  button.textContent = found.length ? `findings (${found.length})` : "no findings";
  button.disabled = found.length === 0;
  button.classList.toggle("bad", found.some((f) => f.severity === "error"));
  button.hidden = false;
  const body = document.querySelector("#findings-list tbody");
  body.replaceChildren();
  found.forEach((f, i) => {
    const tr = document.createElement("tr");
    tr.className = "finding " + f.severity;
    tr.dataset.finding = String(i);
    for (const text of [f.severity, f.kind, f.title]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    tr.addEventListener("click", () => pickFinding(i));
    body.append(tr);
  });
}

document.getElementById("findings-toggle").addEventListener("click", () => {
  const list = document.getElementById("findings");
  list.hidden = !list.hidden;
  window.dispatchEvent(new CustomEvent("flightrec:relayout"));
});

/** Shows finding `i`'s evidence, as clicking its row does. */
export async function pickFinding(i) {
  const f = state.meta && state.meta.findings[i];
  if (!f) return;
  for (const tr of document.querySelectorAll("#findings-list tr")) {
    tr.classList.toggle("on", tr.dataset.finding === String(i));
  }
  if (f.view !== state.mode) await switchMode(f.view);
  const margin = Math.max((f.to - f.from) / 5, 20000);
  setView(f.from - margin, f.to + margin);
  state.marked = f.marks.map((m) => ({ id: m.id, t: m.t, lane: m.lane, task: m.task }));
  // Its object as every reader writes it: `field=value`.
  const eq = f.object ? f.object.indexOf("=") : -1;
  if (eq > 0) {
    await selectObject(f.object.slice(0, eq), f.object.slice(eq + 1));
  } else {
    state.object = null;
    document.getElementById("object").hidden = true;
  }
  // The evidence's own lanes, whatever the object's record count (its list holds only its
  // newest records, which may all lie after the finding).
  revealTasks(f.marks.map((m) => m.task).filter((t) => t != null));
  const last = f.marks[f.marks.length - 1];
  if (last) await showRecord(last.id);
  requestDraw();
}
