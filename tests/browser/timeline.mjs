// Drives the viewer in headless Debian chromium, as a user would, and prints what it saw as
// one JSON object on stdout; the Rust test (tests/e2e/viewer.rs) decides what is right.
//
//   node timeline.mjs MODE FLIGHTREC_BIN DUMP ARTIFACT_DIR [options as JSON]
//
// MODE: "interleave" (lanes, click an event, click a field value), "xss" (hostile strings
// stay text), "scale" (time to first render, a zoom and a pan), "demo" (`flightrec demo`
// opens the viewer on its race; DUMP is then the demo's directory), "tasks" (the task view:
// proposed, switched to with a selection, lanes and polls; scrolling through many tasks),
// "asyncdemo" (`flightrec demo --async` opens the task view on its interleaved requests),
// "apierror" (a record that does not exist, a server error: the page says so and renders
// nothing), "findings" (the findings list: click each, the page shows its evidence), "open"
// (only what the page shows as it opens). The page is asked through `window.flightrecView`'s query methods only.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [mode, bin, dump, artifacts, optsJson] = process.argv.slice(2);
const opts = optsJson ? JSON.parse(optsJson) : {};
mkdirSync(artifacts, { recursive: true });

function startViewer() {
  return new Promise((resolve, reject) => {
    // In "demo" mode DUMP is the demo's directory and the demo starts the viewer itself.
    const args = mode === "demo" ? ["demo", "--dir", dump]
      : mode === "asyncdemo" ? ["demo", "--async", "--dir", dump]
      : mode === "merged" ? ["view", "--merge", ...dump.split(",")]
      : mode === "bucket" ? ["view", dump, ...(opts.viewArgs || [])] : ["view", dump];
    const env = { ...process.env, ...(opts.env || {}) };
    const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/(http:\/\/\S+)/);
      if (m) resolve({ child, url: m[1] });
    });
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => reject(new Error(`viewer exited ${code}: ${err}`)));
  });
}

const launched = Date.now();
// opts.url: a viewer already running (for measuring it from outside); else start one.
const { child, url } = opts.url ? { child: { kill() {} }, url: opts.url } : await startViewer();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const result = { url, mode, errors: [], dialogs: [], cspViolations: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
  page.on("pageerror", (e) => result.errors.push(String(e)));
  page.on("console", (m) => {
    // The API-error test asks for errors on purpose: the browser's own line about each
    // refused request is expected there, and only there.
    const asked = mode === "apierror" && /Failed to load resource/.test(m.text());
    if (m.type() === "error" && !asked) result.errors.push(m.text());
  });
  page.on("dialog", async (d) => { result.dialogs.push(d.message()); await d.dismiss(); });
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
  });

  const t0 = Date.now();
  if (mode === "bucket") {
    // The index lists what the bucket's metadata says; nothing is fetched until opened.
    const cached = () => (existsSync(opts.cacheDir) ? readdirSync(opts.cacheDir, { recursive: true }).filter((f) => f.endsWith(".flightrec")).length : 0);
    await page.goto(url);
    await page.waitForSelector("input.pick");
    result.rows = await page.locator("#dumps tbody tr").evaluateAll((rows) => rows.map((r) => [...r.children].map((c) => c.textContent)));
    result.cachedBeforeOpen = cached();
    const boxes = page.locator("input.pick");
    const n = await boxes.count();
    for (let i = 0; i < n; i++) await boxes.nth(i).check();
    await page.locator("#together").click();
  } else {
    await page.goto(url + (opts.query || ""));
  }
  await page.waitForFunction(() => window.flightrecView && window.flightrecView.ready().meta);
  // The first drawing: for recordings opened together and still being read, their
  // skeleton (where each thread was busy); else the recording itself.
  await page.waitForFunction(() => window.flightrecView.ready().data);
  result.firstPaintMs = Date.now() - t0;
  result.firstPaint = await page.evaluate(() => ({
    ...window.flightrecView.firstPaint(),
    banner: document.getElementById("banner").textContent,
  }));
  await page.evaluate(() => window.flightrecView.settled());
  result.firstRenderMs = Date.now() - t0;
  result.loadedLoading = await page.evaluate(() => window.flightrecView.meta().loading);
  // From starting `flightrec view` (which decodes while the browser starts) to drawn.
  result.sinceLaunchMs = Date.now() - launched;
  result.lanes = await page.locator(".lane-label").count();
  result.laneNames = await page.locator(".lane-label").evaluateAll((ls) => ls.map((l) => l.firstChild.textContent.trim()));
  result.banner = await page.locator("#banner").textContent();
  result.header = await page.locator("#title").textContent();
  result.openedView = await page.evaluate(() => window.flightrecView.view());
  result.earlierNote = await page.locator("#earlier").textContent();
  // Each thread lane's tid is inside its label's box, however long the name.
  result.tidsShown = await page.locator(".lane-label:not(.task-label)").evaluateAll((ls) => ls
    .filter((l) => !l.hidden && l.querySelector(".tid"))
    .map((l) => {
      const box = l.getBoundingClientRect();
      const tid = l.querySelector(".tid").getBoundingClientRect();
      return { name: l.title, inside: tid.width > 0 && tid.right <= box.right + 0.5 };
    }));
  result.metaLanes = await page.evaluate(() => window.flightrecView.meta().lanes.map((l) => ({ thread: l.thread, name: l.name })));
  result.origin = await page.evaluate(() => window.flightrecView.meta().origin);

  const settle = () => page.evaluate(() => window.flightrecView.settled());
  // Clicks the drawn event `pick` chooses until the details of one titled `title` open, the
  // condition asserted: on a loaded machine a redraw can move the event between reading
  // where it is and the click. Returns the event clicked and the events drawn then.
  const clickUntilDetails = async (title, pick) => {
    const deadline = Date.now() + 90000;
    for (;;) {
      await settle();
      const events = await page.evaluate(() => window.flightrecView.drawnEvents());
      const target = pick(events);
      if (!target) throw new Error(`no clickable drawn event titled ${title}`);
      await page.mouse.click(target.x, target.y);
      const opened = await page
        .waitForFunction((t) => document.querySelector("#details h3")?.textContent === t, title, { timeout: 10000 })
        .then(() => true, () => false);
      if (opened) return { target, events };
      if (Date.now() > deadline) throw new Error(`clicking ${title} never opened its details`);
    }
  };
  const timed = async (f) => {
    const s = Date.now();
    await f();
    await page.waitForTimeout(20); // let the debounced request start
    await settle();
    return Date.now() - s;
  };

  if (mode === "interleave" || mode === "xss") {
    const { target, events } = await clickUntilDetails(
      opts.clickTitle, (events) => events.find((e) => e.title === opts.clickTitle));
    result.drawnEvents = events.length;
    result.clicked = target.id;
    result.detailsTitle = await page.locator("#details h3").textContent();
    result.fields = await page.evaluate(() => {
      const o = {};
      const dl = document.querySelector("#details dl.fields");
      for (const dt of dl.querySelectorAll("dt")) o[dt.textContent] = dt.nextElementSibling.textContent;
      return o;
    });
    if (opts.field) {
      await page.locator(`#details button.value[data-field="${opts.field}"]`).click();
      await page.waitForFunction(() => document.querySelectorAll("#object-list tbody tr").length > 0);
      await page.waitForTimeout(50);
      result.highlighted = await page.evaluate(() => window.flightrecView.highlighted());
      result.objectRows = await page.locator("#object-list tbody tr").count();
      result.handoverRows = await page.locator("#object-list tbody tr.handover").count();
      result.objectThreads = await page.locator("#object-list tbody tr td:nth-child(2)").allTextContents();
      result.objectTitle = await page.locator("#object-title").textContent();
    }
    if (mode === "xss") {
      // Hostile strings must arrive as text: no element they describe may exist.
      result.injected = await page.evaluate(() =>
        document.querySelectorAll("img, iframe, svg, object, embed, script:not([src])").length);
      result.xssFlag = await page.evaluate(() => window.__xss === undefined ? null : String(window.__xss));
      result.bodyText = await page.evaluate(() => document.body.innerText);
    }
  }

  if (mode === "demo") {
    await page.waitForFunction(() => window.flightrecView.object());
    await settle();
    result.view = await page.evaluate(() => window.flightrecView.view());
    result.objectTitle = await page.locator("#object-title").textContent();
    result.handoverRows = await page.locator("#object-list tbody tr.handover").count();
    // The selected object's records inside the view the page opened on, by lane.
    result.layout = await page.evaluate(() => window.flightrecView.layout());
    // The trigger at the very right of the view: its label must still be whole.
    await page.evaluate(() => {
      const v = window.flightrecView.view();
      const t = window.flightrecView.meta().trigger.t;
      const span = v.end - v.start;
      window.flightrecView.setView(t - span * 0.998, t + span * 0.002);
    });
    await settle();
    result.layoutAtTrigger = await page.evaluate(() => window.flightrecView.layout());
    await page.evaluate((v) => window.flightrecView.setView(v.start, v.end), result.view);
    await settle();
    result.visible = await page.evaluate(() => {
      const fv = window.flightrecView;
      const [o, v, lanes] = [fv.object(), fv.view(), fv.meta().lanes];
      return o.records
        .filter((r) => r.t >= v.start && r.t <= v.end)
        .map((r) => ({ lane: lanes[r.lane].name, title: r.title }));
    });
  }

  if (mode === "tasks") {
    const fv = () => window.flightrecView;
    result.proposed = await page.locator("#proposal").isVisible();
    result.proposalText = await page.locator("#proposal-text").textContent();
    if (opts.clickTitle) {
      // Select an object in the thread view first: the switch must keep it.
      await clickUntilDetails(opts.clickTitle, (events) => {
        // One the click lands on (the first drawn under the pointer is the one clicked).
        const under = (c) => events.find((e) => Math.abs(e.x - c.x) <= 5 && Math.abs(e.y - c.y) <= 7);
        return events.find((e) => e.title === opts.clickTitle && under(e) === e);
      });
      await page.locator(`#details button.value[data-field="${opts.field}"]`).click();
      await page.waitForFunction(() => window.flightrecView.object());
      result.selectedBefore = await page.evaluate(() => window.flightrecView.selected());
      result.highlightedBefore = await page.evaluate(() => window.flightrecView.highlighted());
    }
    const switched = Date.now();
    await page.locator("#mode-tasks").click();
    await page.waitForFunction(() => window.flightrecView.mode() === "tasks");
    await settle();
    result.switchMs = Date.now() - switched;
    result.taskCount = await page.evaluate(() => window.flightrecView.taskCount());
    result.selectedAfter = await page.evaluate(() => window.flightrecView.selected());
    result.highlightedAfter = await page.evaluate(() => window.flightrecView.highlighted());
    result.objectTitle = await page.locator("#object-title").textContent();
    result.objectDrawnOn = await page.evaluate(() => {
      const o = window.flightrecView.object();
      return (o?.records || []).map((r) => ({ task: r.task, handover: r.task_handover }));
    });
    result.labelsInDom = await page.locator("#labels .task-label").count();
    // Zoom onto a few tasks' lives: their polls, drawn, with the worker that ran each.
    result.zoomed = [];
    for (const position of opts.zoomOn || []) {
      await page.evaluate((p) => window.flightrecView.scrollToTask(p), position);
      await settle();
      const t = (await page.evaluate(() => window.flightrecView.visibleTasks())).find((x) => x.position === position);
      await page.evaluate((t) => window.flightrecView.setView(t.start - (t.end - t.start) * 0.02, t.end + (t.end - t.start) * 0.02), t);
      await page.waitForTimeout(20);
      await settle();
      const seen = (await page.evaluate(() => window.flightrecView.visibleTasks())).find((x) => x.position === position);
      result.zoomed.push(seen);
    }
    await page.screenshot({ path: join(artifacts, "timeline-tasks-view.png") });
    // Scroll through the lanes: each scroll redraws from what the page holds at once.
    result.scrollMs = [];
    const count = result.taskCount;
    for (const f of opts.scrollTo || []) {
      const position = Math.min(count - 1, Math.floor(f * count));
      result.scrollMs.push(await timed(() => page.evaluate((p) => window.flightrecView.scrollToTask(p), position)));
      const vis = await page.evaluate(() => window.flightrecView.visibleTasks());
      if (!vis.some((v) => v.position === position)) throw new Error(`lane ${position} not on screen after scrolling to it`);
    }
    result.scrollFrameMs = await page.evaluate(() => window.flightrecView.scrollTimes());
    result.labelsInDomAfterScroll = await page.locator("#labels .task-label").count();
    // Back to threads: the selection stays.
    await page.locator("#mode-threads").click();
    await settle();
    result.modeBack = await page.evaluate(() => window.flightrecView.mode());
    result.highlightedBack = await page.evaluate(() => window.flightrecView.highlighted());
    result.lanesBack = await page.locator(".lane-label").count();
    void fv;
  }

  if (mode === "bucket") {
    result.processes = await page.evaluate(() => window.flightrecView.meta().processes);
    result.cachedAfterOpen = existsSync(opts.cacheDir) ? readdirSync(opts.cacheDir, { recursive: true }).filter((f) => f.endsWith(".flightrec")).length : 0;
  }

  if (mode === "merged" && !opts.scale) {
    await page.waitForFunction(() => window.flightrecView.object());
    await settle();
    result.title = await page.locator("#title").textContent();
    result.lanesMeta = await page.evaluate(() => window.flightrecView.meta().lanes.map((l) => ({ name: l.name, process: l.process })));
    result.processes = await page.evaluate(() => window.flightrecView.meta().processes);
    result.objectRecords = await page.evaluate(() => window.flightrecView.object().records.map((r) => ({ thread: r.thread, handover: r.handover, from: r.from, title: r.title })));
    result.objectTitle = await page.locator("#object-title").textContent();
    result.highlighted = await page.evaluate(() => window.flightrecView.highlighted());
    // A process's lanes fold into one row, and unfold.
    const lanesShown = () => page.evaluate(() => ({
      heights: window.flightrecView.lanes().heights,
      drawnLanes: window.flightrecView.lanes().drawn,
      labels: [...document.querySelectorAll(".lane-label")].filter((d) => !d.hidden).map((d) => d.textContent),
    }));
    await page.locator('.lane-label .fold[data-process="0"]').click();
    await settle();
    result.folded = await lanesShown();
    await page.locator('.lane-label .fold[data-process="0"]').click();
    await settle();
    result.unfolded = await lanesShown();
    // Each process's clock is shown; one is shifted by a measured offset (2.5 ms later).
    const starts = () => page.evaluate(() => ({
      origin: window.flightrecView.meta().origin,
      lanes: window.flightrecView.meta().lanes.map((l) => ({ process: l.process, data_start: l.data_start })),
    }));
    result.processRows = await page.locator("#processes .process").allTextContents();
    result.beforeShift = await starts();
    await page.locator('#processes .process[data-process="1"] input').fill("2.5");
    await page.locator('#processes .process[data-process="1"] button').click();
    await page.waitForFunction(() => window.flightrecView && window.flightrecView.meta()
      && window.flightrecView.meta().processes[1].shift_ns === 2500000);
    result.shiftedUrl = page.url();
    result.afterShift = await starts();
    result.processRowsAfter = await page.locator("#processes .process").allTextContents();
    // The index page offers to open them together.
    await page.goto(url.replace(/\/dump\/.*$/, "/"));
    await page.waitForSelector("input.pick");
    result.indexPicks = await page.locator("input.pick").count();
    const boxes = page.locator("input.pick");
    for (let i = 0; i < result.indexPicks; i++) await boxes.nth(i).check();
    await page.locator("#together").click();
    await page.waitForFunction(() => window.flightrecView && window.flightrecView.ready().meta);
    result.togetherUrl = page.url();
    result.togetherLanes = await page.evaluate(() => window.flightrecView.meta().lanes.length);
  }

  if (mode === "deadlock") {
    // The whole recording is in view: every hold, wait and the cycle's arrows are drawn.
    result.locks = await page.evaluate(() => window.flightrecView.drawnLocks());
    result.bannerClass = await page.locator("#banner").getAttribute("class");
    // Clicking a wait opens its lock's page.
    const wait = result.locks.find((l) => l.kind === "wait" && l.lane === opts.clickWaitOn);
    if (!wait) throw new Error("no wait drawn on " + opts.clickWaitOn);
    await page.mouse.click(Math.max(wait.x + 40, wait.x + wait.w / 2), wait.y + wait.h / 2);
    await page.waitForFunction(() => (document.querySelector("#details h3")?.textContent || "").startsWith("lock "));
    result.lockTitle = await page.locator("#details h3").textContent();
    result.lockPanel = await page.locator("#details").innerText();
    // The stall marker's details: the trigger and the stalled threads' native stacks.
    const tl = await page.evaluate(() => window.flightrecView.triggerLabel());
    if (!tl) throw new Error("no trigger marker drawn");
    await page.locator("#canvas").click({ position: { x: tl.x + tl.w / 2, y: 12 } });
    await page.waitForFunction(() => (document.querySelector("#details h3")?.textContent || "").startsWith("⚡"));
    result.markerTitle = await page.locator("#details h3").textContent();
    result.markerStacks = await page.locator("#details .stack").evaluateAll((boxes) =>
      boxes.map((b) => ({ headline: b.querySelector("h4").textContent, frames: [...b.querySelectorAll("li")].map((li) => li.textContent) })));
    // A stuck thread's lane label leads to its stack.
    const label = page.locator(".lane-label", { hasText: opts.clickWaitOn }).locator(".stack-link");
    await label.click();
    await page.waitForFunction(() => (document.querySelector("#details h3")?.textContent || "") === "native stack");
    result.laneStack = await page.locator("#details .stack").evaluateAll((boxes) =>
      boxes.map((b) => ({ headline: b.querySelector("h4").textContent, frames: [...b.querySelectorAll("li")].map((li) => li.textContent) })));
  }

  if (mode === "cut") {
    // A cut recording's lanes are hatched after their last surviving record: count the
    // hatching's pixels on the canvas.
    result.hatchPixels = await page.evaluate(() => {
      const c = document.getElementById("canvas");
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) {
        // The hatching's pale red (#e3c0c0), blended with the lane's white by antialiasing.
        const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
        if (r > 200 && g > 150 && r - g > 12 && r - b > 12 && Math.abs(g - b) < 8) n++;
      }
      return n;
    });
    result.cutLanes = await page.evaluate(() => window.flightrecView.meta().lanes.filter((l) => l.cut).length);
  }

  if (mode === "asyncdemo") {
    await page.waitForFunction(() => window.flightrecView.object() && window.flightrecView.mode() === "tasks");
    await settle();
    result.objectTitle = await page.locator("#object-title").textContent();
    result.visibleTasks = await page.evaluate(() => window.flightrecView.visibleTasks());
    result.objectRecords = await page.evaluate(() => window.flightrecView.object().records.map((r) => ({ task: r.task, handover: r.task_handover, t: r.t, title: r.title })));
    result.view = await page.evaluate(() => window.flightrecView.view());
  }

  if (mode === "scale" || opts.scale) {
    result.records = await page.evaluate(() => window.flightrecView.meta().records);
    await page.locator("#canvas").hover({ position: { x: 700, y: 100 } });
    result.zoomMs = [];
    result.panMs = [];
    // Each input's redraw, timed by the page from the input event to the end of its draw:
    // it must come from data the page holds, before any answer from the server.
    const frame = async (key) => {
      const before = await page.evaluate(() => window.flightrecView.frameTimes().length);
      await page.keyboard.press(key);
      const frames = await page.evaluate(() => window.flightrecView.frameTimes());
      if (frames.length !== before + 1) throw new Error(`no redraw for ${key}: ${frames.length - before}`);
      return frames[before];
    };
    result.zoomFrameMs = [];
    result.panFrameMs = [];
    for (let i = 0; i < 3; i++) result.zoomMs.push(await timed(async () => result.zoomFrameMs.push(await frame("w"))));
    for (let i = 0; i < 3; i++) result.panMs.push(await timed(async () => result.panFrameMs.push(await frame("d"))));
    result.zoomOutFrameMs = [];
    result.zoomOutMs = await timed(async () => result.zoomOutFrameMs.push(await frame("0")));
    result.drawnItems = await page.evaluate(() => window.flightrecView.drawnCount());
    result.refineMs = await page.evaluate(() => window.flightrecView.refineTimes());
    result.fetches = await page.evaluate(() => window.flightrecView.windowRequests());
  }

  if (mode === "apierror") {
    const details = () => page.evaluate(() => ({
      title: document.querySelector("#details h3")?.textContent ?? null,
      text: document.getElementById("details").innerText,
      // What a rendered record has: its field list and its definition rows.
      fieldLists: document.querySelectorAll("#details dl.fields").length,
      rows: document.querySelectorAll("#details dt").length,
      selected: window.flightrecView.selected(),
    }));
    // A record id that does not exist (404).
    await page.evaluate(() => window.flightrecView.showRecord(999999999));
    await page.waitForFunction(() => window.flightrecView.problems().length >= 1);
    result.missing = await details();
    // The server failing (500) on the record a user clicks.
    await page.route("**/api/dumps/*/records/*", (route) => route.fulfill({
      status: 500, contentType: "application/json", body: JSON.stringify({ error: "the server broke" }),
    }));
    const events = await page.evaluate(() => window.flightrecView.drawnEvents());
    if (!events.length) throw new Error("no drawn event to click");
    await page.mouse.click(events[0].x, events[0].y);
    await page.waitForFunction(() => window.flightrecView.problems().length >= 2);
    result.broken = await details();
    // A search the server fails: said under the search box, nothing jumped to.
    await page.route("**/api/dumps/*/search*", (route) => route.fulfill({ status: 500, body: "not json" }));
    await page.locator("#search").fill("anything");
    await page.locator("#search").press("Enter");
    await page.waitForFunction(() => window.flightrecView.problems().length >= 3);
    result.searchStatus = await page.locator("#search-status").textContent();
    result.problems = await page.evaluate(() => window.flightrecView.problems());
  }

  if (mode === "findings") {
    await settle();
    result.button = await page.locator("#findings-toggle").textContent();
    await page.locator("#findings-toggle").click();
    const rows = page.locator("#findings-list tbody tr");
    result.rows = await rows.allTextContents();
    result.picked = [];
    for (let i = 0; i < await rows.count(); i++) {
      await rows.nth(i).click();
      // Picked: its records marked, its last one's details open, its object followed.
      await page.waitForFunction((i) => {
        const fv = window.flightrecView;
        const f = fv.meta().findings[i];
        const last = f.records[f.records.length - 1].record;
        const o = fv.object();
        return fv.marked().length === f.records.length && fv.selected()?.id === last &&
          fv.mode() === f.view && (!f.object || (o && `${o.field}=${o.value}` === f.object));
      }, i);
      await settle();
      result.picked.push(await page.evaluate((i) => {
        const fv = window.flightrecView;
        const o = fv.object();
        return {
          finding: fv.meta().findings[i], view: fv.view(), mode: fv.mode(), selected: fv.selected(),
          marked: fv.marked(), object: o && { field: o.field, value: o.value },
          visibleTasks: fv.visibleTasks().map((t) => t.task),
          on: document.querySelector("#findings-list tr.on")?.dataset.finding ?? null,
        };
      }, i));
    }
  }

  result.cspViolations = await page.evaluate(() => window.__csp);
} catch (e) {
  result.failure = String(e && e.stack || e);
} finally {
  // A screenshot either way: of success, or of what the failure looked like.
  try {
    const page = browser.contexts()[0]?.pages()[0];
    if (page) {
      result.screenshot = join(artifacts, `timeline-${mode}.png`);
      await page.screenshot({ path: result.screenshot, fullPage: true });
    }
  } catch (e) {
    result.screenshotError = String(e);
  }
  await browser.close();
  child.kill("SIGINT");
}
process.stdout.write(JSON.stringify(result) + "\n");
