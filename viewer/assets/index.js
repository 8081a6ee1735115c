"use strict";
// The index: every dump the server found, newest first. Every string from a dump is set
// as text, never parsed as HTML.

function fmtSize(n) {
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + " GiB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
  return n + " B";
}

function fmtTime(nsString) {
  if (!nsString) return "";
  const ns = BigInt(nsString);
  const ms = Number(ns / 1000000n);
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "");
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

async function main() {
  const body = document.querySelector("#dumps tbody");
  let data;
  try {
    const r = await fetch("/api/dumps");
    data = await r.json();
    if (!r.ok) throw new Error(data.error || r.statusText);
  } catch (e) {
    const p = document.getElementById("error");
    p.textContent = "Cannot list dumps: " + e.message;
    p.hidden = false;
    return;
  }
  if (data.dumps.length === 0) document.getElementById("empty").hidden = false;
  const chosen = new Set();
  const together = document.getElementById("together");
  const refresh = () => {
    together.disabled = chosen.size < 2;
    together.textContent = chosen.size < 2 ? "Open together (choose two or more)" : `Open ${chosen.size} together`;
  };
  together.addEventListener("click", () => {
    location.href = "/dump/" + [...chosen].join("+");
  });
  for (const d of data.dumps) {
    const tr = document.createElement("tr");
    tr.className = "dump trigger-" + (d.trigger || "unknown");
    const pick = cell(tr, "");
    if (!d.error) {
      const box = document.createElement("input");
      box.type = "checkbox";
      box.className = "pick";
      box.dataset.id = d.id;
      box.title = "open with others on one timeline";
      box.addEventListener("change", () => {
        if (box.checked) chosen.add(d.id); else chosen.delete(d.id);
        refresh();
      });
      pick.appendChild(box);
    }
    cell(tr, fmtTime(d.time));
    cell(tr, d.service);
    cell(tr, d.host);
    cell(tr, d.pid);
    const t = cell(tr, d.error ? "unreadable: " + d.error : d.trigger, "trigger");
    if (d.trigger_description) t.title = d.trigger_description;
    cell(tr, fmtSize(d.size));
    const td = cell(tr, "");
    const a = document.createElement("a");
    a.href = "/dump/" + encodeURIComponent(d.id);
    a.textContent = d.file;
    td.appendChild(a);
    body.appendChild(tr);
  }
  refresh();
}

main();
