// The status line under the timeline.

export function setStatus(text) { document.getElementById("perf").textContent = text; }
