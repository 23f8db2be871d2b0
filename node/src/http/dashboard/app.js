// The meshwork dashboard: plain JavaScript over the node's HTTP API (API.md),
// no framework and no build step, so the node can embed it and serve it on a
// LAN with no internet. Three views: the mesh (a server-sent event stream,
// once a second), the node's jobs (polled), one job's timeline (a canvas).
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k.startsWith("data-") || k === "title" || k === "class" || k === "href") e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
};

const short = (id) => (id.length > 12 ? "…" + id.slice(-8) : id);
const secs = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : ms < 60000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`);

let mode = "node";

// ---------------------------------------------------------------- the mesh

/// Load history per peer, kept here from the stream: the node keeps none for
/// a page nobody has open. 300 samples at 1/s: the last 5 minutes.
const HISTORY = 300;
const history = new Map();

function meshStream() {
  const live = $("#live");
  const source = new EventSource("/api/peers/events");
  source.addEventListener("mesh", (e) => {
    live.dataset.state = "live";
    live.textContent = "live";
    drawMesh(JSON.parse(e.data));
  });
  source.onerror = () => {
    live.dataset.state = "lost";
    live.textContent = "connection lost, retrying…";
  };
}

/// The first address without its `/p2p/<id>` tail (the row names the peer),
/// and how many more there are (all of them on hover).
function address(addrs) {
  if (addrs.length === 0) return "–";
  const first = addrs[0].replace(/\/p2p\/[^/]+$/, "");
  return addrs.length > 1 ? `${first} (+${addrs.length - 1})` : first;
}

function peerStatus(p) {
  if (p.down) return ["down", `down: ${p.down}`];
  if (p.quiet) return ["quiet", "quiet (adverts stopped)"];
  if (!p.connected) return ["down", "disconnected"];
  return ["up", "up"];
}

function drawMesh(mesh) {
  const me = { ...mesh.me, me: true, addresses: [], tasks: [], connected: true };
  const rows = [me, ...mesh.peers.slice().sort((a, b) => a.peer_id.localeCompare(b.peer_id))];
  const body = $("#mesh tbody");
  body.replaceChildren();
  let up = 0;
  for (const p of rows) {
    const [status, words] = p.me ? ["up", "up (this node)"] : peerStatus(p);
    if (status === "up") up++;
    const load = p.slots ? ((p.running || 0) + (p.queued || 0)) / p.slots : 0;
    const h = history.get(p.peer_id) || [];
    h.push(status === "down" ? null : load);
    if (h.length > HISTORY) h.shift();
    history.set(p.peer_id, h);
    const spark = el("canvas", { class: "spark", width: 300, height: 56, title: `load now ${(load * 100).toFixed(0)}% of slots` });
    const opt = (v) => (v === null || v === undefined ? "–" : String(v));
    body.append(
      el("tr", { "data-peer": p.peer_id, "data-status": status, "data-running": opt(p.running) },
        el("td", {}, el("span", { class: "id", title: p.peer_id, text: p.me ? `${short(p.peer_id)} (this node)` : short(p.peer_id) })),
        el("td", { class: `status status-${status}`, text: words }),
        el("td", { class: "addr", title: p.addresses.join("\n"), text: address(p.addresses) }),
        el("td", { class: "num", text: opt(p.slots) }),
        el("td", { class: "num", text: opt(p.running) }),
        el("td", { class: "num", text: opt(p.queued) }),
        el("td", { class: "num", text: p.advert_age_ms == null ? "–" : secs(p.advert_age_ms) }),
        el("td", { class: "num", text: p.rtt_us == null ? "–" : `${(p.rtt_us / 1000).toFixed(2)} ms` }),
        el("td", { class: "tasks", text: p.me ? "–" : p.tasks.join(", ") || "none (client)" }),
        el("td", {}, spark)));
    sparkline(spark, h);
  }
  const count = $("#peer-count");
  count.dataset.up = up;
  count.dataset.total = rows.length;
  count.dataset.at = mesh.at_ms;
  count.dataset.updates = Number(count.dataset.updates || 0) + 1;
  count.textContent = `${up} up of ${rows.length}`;
}

/// Load (pieces held over slots) over the last samples: a filled line,
/// gaps while the peer was down, a dashed line at full slots. The first
/// minute fills the width; after that it slides to the last 5 minutes.
function sparkline(canvas, h) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, ht = canvas.height;
  const max = Math.max(1, ...h.filter((v) => v !== null));
  const span = Math.min(HISTORY, Math.max(60, h.length));
  const x = (i) => w - (h.length - 1 - i) * (w / (span - 1));
  const y = (v) => ht - 2 - (v / max) * (ht - 4);
  ctx.clearRect(0, 0, w, ht);
  ctx.strokeStyle = "#8c959f";
  ctx.setLineDash([4, 4]);
  ctx.beginPath();
  ctx.moveTo(0, y(1));
  ctx.lineTo(w, y(1));
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = "rgba(9,105,218,0.25)";
  ctx.strokeStyle = "#0969da";
  ctx.lineWidth = 2;
  let run = [];
  const flush = () => {
    if (run.length === 0) return;
    ctx.beginPath();
    ctx.moveTo(x(run[0]), ht);
    for (const i of run) ctx.lineTo(x(i), y(h[i]));
    ctx.lineTo(x(run[run.length - 1]), ht);
    ctx.fill();
    ctx.beginPath();
    run.forEach((i, k) => (k ? ctx.lineTo(x(i), y(h[i])) : ctx.moveTo(x(i), y(h[i]))));
    ctx.stroke();
    run = [];
  };
  h.forEach((v, i) => (v === null ? flush() : run.push(i)));
  flush();
}

// ---------------------------------------------------------------- the jobs

let selected = null;

async function api(method, path, body) {
  const r = await fetch(path, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(json.error || `${r.status} ${r.statusText}`);
  return json;
}

async function refreshJobs() {
  let jobs;
  try {
    jobs = await api("GET", "/api/jobs");
  } catch (e) {
    $("#no-jobs").hidden = false;
    $("#no-jobs").textContent = `No jobs: ${e.message}`;
    return;
  }
  $("#no-jobs").hidden = jobs.length > 0;
  const body = $("#jobs tbody");
  // The table is redrawn each second: keep the keyboard focus where it was.
  const focused = document.activeElement?.closest?.("#jobs [data-focus]")?.dataset.focus;
  body.replaceChildren();
  for (const j of jobs) {
    const end = j.finished_ms || Date.now();
    // A finished job that did not complete shows what it got done.
    const done = Math.max(j.done, Object.values(j.per_peer).reduce((a, b) => a + b, 0));
    // The busiest few peers; all of them on hover.
    const ranked = Object.entries(j.per_peer).sort((a, b) => b[1] - a[1]);
    const perPeer = ranked.slice(0, 4).map(([p, n]) => el("span", { class: "id", title: p, text: `${short(p)}: ${n} ` }));
    if (ranked.length > 4) perPeer.push(el("span", { class: "muted", title: ranked.map(([p, n]) => `${p}: ${n}`).join("\n"), text: `+${ranked.length - 4} more` }));
    const actions = el("td");
    if (j.state === "running" && mode === "node") {
      actions.append(el("button", { type: "button", "data-action": "cancel", "data-focus": `cancel-${j.id}`, text: "Cancel", onclick: (e) => { e.stopPropagation(); cancel(j.id); } }));
    }
    if (j.state === "done" && mode === "node") {
      actions.append(el("a", { href: `/api/jobs/${j.id}/result`, text: "result", onclick: (e) => e.stopPropagation() }));
    }
    const row = el("tr", { "data-job": j.id, "data-state": j.state, "data-done": done, "data-pieces": j.pieces, class: j.id === selected ? "selected" : "" },
      el("td", { class: "num" }, el("button", { type: "button", class: "link", "data-focus": `show-${j.id}`, title: "show its timeline", text: j.id })),
      el("td", {}, el("code", { text: [j.task, ...j.args].join(" ") })),
      el("td", { class: "state", text: j.error ? `${j.state}: ${j.error}` : j.state }),
      el("td", {}, el("progress", { max: j.pieces || 1, value: done }), el("span", { class: "bar-label", text: `${done}/${j.pieces}` })),
      el("td", {}, ...perPeer),
      el("td", { class: "num", text: j.retries }),
      el("td", { class: "num", text: j.backups ?? 0 }),
      el("td", { class: "num", text: secs(end - j.submitted_ms) }),
      actions);
    row.onclick = () => select(j.id);
    body.append(row);
  }
  if (focused) body.querySelector(`[data-focus="${focused}"]`)?.focus();
  if (selected === null && jobs.length > 0) select(jobs[0].id);
}

async function cancel(id) {
  try {
    await api("DELETE", `/api/jobs/${id}`);
  } catch (e) {
    $("#submit-error").textContent = `cancel ${id}: ${e.message}`;
  }
  refreshJobs();
}

$("#submit").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("#submit-error").textContent = "";
  const args = $("#submit-args").value.split(/\s+/).filter((a) => a);
  try {
    const job = await api("POST", "/api/jobs", { task: $("#submit-task").value.trim(), args });
    selected = job.id;
    await refreshJobs();
    select(job.id);
  } catch (err) {
    $("#submit-error").textContent = err.message;
  }
});

// ---------------------------------------------------------------- one job

/// Outcomes, in the order they stack; each has a colour AND a pattern, so
/// the timeline reads without colour too (the legend names both).
const OUTCOMES = [
  { key: "done", label: "done", color: "#2da44e", pattern: "solid" },
  { key: "backup_won", label: "backup won", color: "#0969da", pattern: "dots" },
  { key: "running", label: "running", color: "#54aeff", pattern: "hlines" },
  { key: "overtaken", label: "overtaken by a backup", color: "#afb8c1", pattern: "vlines" },
  { key: "retried", label: "retried elsewhere", color: "#e16f24", pattern: "diagonal" },
  { key: "failed", label: "failed", color: "#cf222e", pattern: "cross" },
  { key: "cancelled", label: "cancelled", color: "#6e7781", pattern: "backdiagonal" },
];
const INDEX = Object.fromEntries(OUTCOMES.map((o, i) => [o.key, i]));

function pattern(ctx, o) {
  const t = document.createElement("canvas");
  t.width = t.height = 8;
  const c = t.getContext("2d");
  c.fillStyle = o.color;
  c.fillRect(0, 0, 8, 8);
  c.strokeStyle = "rgba(0,0,0,0.75)";
  c.fillStyle = "rgba(255,255,255,0.9)";
  c.lineWidth = 1.5;
  const line = (x0, y0, x1, y1) => { c.beginPath(); c.moveTo(x0, y0); c.lineTo(x1, y1); c.stroke(); };
  switch (o.pattern) {
    case "dots": c.fillRect(1, 1, 3, 3); c.fillRect(5, 5, 2, 2); break;
    case "hlines": c.fillRect(0, 3, 8, 2); break;
    case "vlines": line(2, 0, 2, 8); line(6, 0, 6, 8); break;
    case "diagonal": line(0, 8, 8, 0); line(-4, 4, 4, -4); line(4, 12, 12, 4); break;
    case "backdiagonal": line(0, 0, 8, 8); line(-4, 4, 4, 12); line(4, -4, 12, 4); break;
    case "cross": line(0, 0, 8, 8); line(0, 8, 8, 0); break;
  }
  return ctx.createPattern(t, "repeat");
}

let timeline = null;
let timer = null;

function select(id) {
  selected = id;
  for (const r of document.querySelectorAll("#jobs tr[data-job]")) r.classList.toggle("selected", Number(r.dataset.job) === id);
  $("#job-section").hidden = false;
  $("#job-title").textContent = id;
  clearTimeout(timer);
  loadTimeline(id);
}

async function loadTimeline(id) {
  try {
    const t = await api("GET", `/api/jobs/${id}/timeline`);
    if (id !== selected) return;
    timeline = sortPeers(t);
    drawJob(t);
    if (!t.finished) timer = setTimeout(() => loadTimeline(id), 1000);
  } catch (e) {
    $("#job-summary").textContent = `No timeline: ${e.message}`;
  }
}

/// Peers in name order (`node 2` before `node 10`), not in the order they
/// first got a piece: rows stay put while a job runs.
function sortPeers(t) {
  const order = t.peers.map((p, i) => i).sort((a, b) => t.peers[a].localeCompare(t.peers[b], undefined, { numeric: true }));
  const rank = new Array(order.length);
  order.forEach((old, i) => (rank[old] = i));
  t.peers = order.map((i) => t.peers[i]);
  for (const s of t.spans) s[1] = rank[s[1]];
  return t;
}

function drawJob(t) {
  const counts = OUTCOMES.map(() => 0);
  const perPeer = t.peers.map(() => OUTCOMES.map(() => 0));
  for (const [, peer, , , outcome] of t.spans) {
    counts[INDEX[outcome]]++;
    perPeer[peer][INDEX[outcome]]++;
  }
  const backups = t.spans.filter((s) => s[5]).length;
  $("#job-summary").textContent =
    `${t.done} of ${t.pieces} pieces done${t.finished ? "" : " so far"}, ${t.spans.length} copies placed on ${t.peers.length} peers ` +
    `(${counts[INDEX.retried]} retried, ${backups} backups, ${counts[INDEX.backup_won]} of them won), ${secs(t.elapsed_us / 1000)}` +
    (t.finished ? ", finished." : ", running.");
  const legend = $("#legend");
  legend.replaceChildren();
  OUTCOMES.forEach((o, i) => {
    const sw = el("canvas", { width: 26, height: 14 });
    const c = sw.getContext("2d");
    c.fillStyle = pattern(c, o);
    c.fillRect(0, 0, 26, 14);
    legend.append(el("span", { class: "item", "data-outcome": o.key, "data-count": counts[i] }, sw, el("span", { text: `${o.label} (${counts[i]})` })));
  });
  const head = $("#job-peers thead"), body = $("#job-peers tbody");
  head.replaceChildren(el("tr", {}, el("th", { text: "Peer" }), ...OUTCOMES.map((o) => el("th", { class: "num", text: o.label }))));
  body.replaceChildren(...t.peers.map((p, i) =>
    el("tr", { "data-peer": p, ...Object.fromEntries(OUTCOMES.map((o, k) => [`data-${o.key}`, perPeer[i][k]])) },
      el("td", {}, el("span", { class: "id", title: p, text: short(p) })),
      ...perPeer[i].map((n) => el("td", { class: "num", text: n })))));
  drawGantt(t);
}

const LABEL_W = 110, AXIS_H = 22;

/// The timeline: a row per peer, time across. Spans are aggregated per pixel
/// column, so the cost is the spans plus the pixels whatever the job's size:
/// each column is a stack of how many copies of each outcome ran there on
/// average (a span adds the fraction of each column it covers: partial
/// columns directly, whole ones through a difference array), scaled to the
/// peer's busiest column. Retried and failed copies also get a tick where
/// they ended, so a single one is visible in a job of 100,000 pieces.
function drawGantt(t) {
  const canvas = $("#gantt");
  const dpr = window.devicePixelRatio || 1;
  const rowH = Math.max(6, Math.min(70, Math.floor(600 / Math.max(1, t.peers.length))));
  const cssW = canvas.clientWidth, cssH = t.peers.length * rowH + AXIS_H + 6;
  canvas.style.height = `${cssH}px`;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.clearRect(0, 0, cssW, cssH);
  const W = Math.max(1, Math.floor(cssW - LABEL_W - 10));
  const span = Math.max(1, t.elapsed_us);
  const drawStart = performance.now();
  const K = OUTCOMES.length;
  const diff = t.peers.map(() => new Float64Array((W + 1) * K));
  const part = t.peers.map(() => new Float64Array((W + 1) * K));
  const ticks = [];
  for (const [, peer, start, end, outcome] of t.spans) {
    const k = INDEX[outcome];
    const a = Math.min(W, (start / span) * W), b = Math.min(W, Math.max(a, (end / span) * W));
    const ca = Math.floor(a), cb = Math.floor(b);
    if (ca === cb) {
      part[peer][ca * K + k] += b - a;
    } else {
      part[peer][ca * K + k] += ca + 1 - a;
      part[peer][cb * K + k] += b - cb;
      diff[peer][(ca + 1) * K + k] += 1;
      diff[peer][cb * K + k] -= 1;
    }
    if (outcome === "retried" || outcome === "failed") ticks.push([peer, Math.min(W - 1, cb), k]);
  }
  // Each outcome is one path of rectangles, filled once: a column's
  // segment joins the previous column's when it has the same place.
  const paths = OUTCOMES.map(() => new Path2D());
  const columns = [];
  const pad = rowH >= 12 ? 2 : rowH >= 5 ? 1 : 0;
  const run = OUTCOMES.map(() => ({ x: 0, y: 0, h: 0 }));
  const flush = (k, x) => {
    const r = run[k];
    if (r.h > 0) paths[k].rect(LABEL_W + r.x, r.y, x - r.x, r.h);
    r.h = 0;
  };
  ctx.font = "12px ui-monospace, monospace";
  ctx.textBaseline = "middle";
  t.peers.forEach((p, r) => {
    const d = diff[r], q = part[r];
    const acc = new Float64Array(K);
    const cols = new Float64Array(W * K);
    let max = 1;
    for (let x = 0; x < W; x++) {
      let total = 0;
      for (let k = 0; k < K; k++) {
        acc[k] += d[x * K + k];
        const n = acc[k] + q[x * K + k];
        cols[x * K + k] = n;
        total += n;
      }
      if (total > max) max = total;
    }
    columns.push(cols);
    const top = r * rowH + pad, h = rowH - 2 * pad;
    ctx.fillStyle = r % 2 ? "#eef1f4" : "#ffffff";
    ctx.fillRect(0, r * rowH, cssW, rowH);
    ctx.fillStyle = "#1b1f24";
    if (rowH >= 12) ctx.fillText(short(p), 4, top + h / 2);
    for (let x = 0; x < W; x++) {
      let y = top + h;
      for (let k = 0; k < K; k++) {
        const n = cols[x * K + k];
        const hh = n > 1e-9 ? (n / max) * h : 0;
        const seg = run[k];
        if (hh === 0 || Math.abs(seg.y - (y - hh)) > 0.05 || Math.abs(seg.h - hh) > 0.05) {
          flush(k, x);
          if (hh > 0) Object.assign(seg, { x, y: y - hh, h: hh });
        }
        y -= hh;
      }
    }
    for (let k = 0; k < K; k++) flush(k, W);
  });
  OUTCOMES.forEach((o, k) => {
    ctx.fillStyle = pattern(ctx, o);
    ctx.fill(paths[k]);
  });
  ctx.lineWidth = 2;
  for (const [peer, x, k] of ticks) {
    ctx.strokeStyle = OUTCOMES[k].color;
    ctx.beginPath();
    ctx.moveTo(LABEL_W + x + 0.5, peer * rowH + 1);
    ctx.lineTo(LABEL_W + x + 0.5, peer * rowH + rowH - 1);
    ctx.stroke();
    ctx.fillStyle = "#1b1f24";
    ctx.font = "bold 11px sans-serif";
    ctx.fillText("✕", LABEL_W + x + 3, peer * rowH + 8);
  }
  // The time axis.
  const axisY = t.peers.length * rowH;
  ctx.strokeStyle = "#57606a";
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(LABEL_W, axisY + 0.5);
  ctx.lineTo(LABEL_W + W, axisY + 0.5);
  ctx.stroke();
  ctx.fillStyle = "#57606a";
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "top";
  const steps = 8;
  for (let i = 0; i <= steps; i++) {
    const x = LABEL_W + (i / steps) * (W - 1);
    ctx.fillRect(x, axisY, 1, 4);
    ctx.textAlign = i === 0 ? "left" : i === steps ? "right" : "center";
    ctx.fillText(secs((i / steps) * span / 1000), x, axisY + 6);
  }
  ctx.textAlign = "left";
  canvas.dataset.spans = t.spans.length;
  canvas.dataset.drawMs = (performance.now() - drawStart).toFixed(1);
  canvas.dataset.peers = t.peers.length;
  canvas.onmousemove = (e) => {
    const b = canvas.getBoundingClientRect();
    const x = Math.floor(e.clientX - b.left - LABEL_W), r = Math.floor((e.clientY - b.top) / rowH);
    if (x < 0 || x >= W || r < 0 || r >= t.peers.length) return;
    const parts = OUTCOMES.map((o, k) => [o.label, columns[r][x * K + k]]).filter(([, n]) => n > 0.005).map(([l, n]) => `${+n.toFixed(2)} ${l}`);
    $("#gantt-hover").textContent = `${t.peers[r]} at ${secs(((x + 0.5) / W) * span / 1000)}: ${parts.join(", ") || "idle"}`;
  };
}

window.addEventListener("resize", () => timeline && drawGantt(timeline));

// ---------------------------------------------------------------- start

(async function start() {
  const about = await api("GET", "/api/dashboard");
  mode = about.mode;
  $("#title").textContent = about.mode === "node" ? `node ${about.title}` : about.title;
  if (mode === "node") {
    meshStream();
  } else {
    for (const e of document.querySelectorAll("#mesh-section, .node-only")) e.hidden = true;
    $("#live").textContent = "simulated run (read only)";
  }
  await refreshJobs();
  setInterval(refreshJobs, 1000);
})();
