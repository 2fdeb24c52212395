// The page talks to the same JSON API as any other client. Every two
// seconds it reads /api/storage, /api/status and /readyz and redraws the
// storage panels; notes and files page through the API's cursor. Uploads
// go through XMLHttpRequest, whose upload progress events and abort fetch
// lacks; large files on S3 go straight to the bucket through a presigned
// URL. The charts are inline SVG drawn here, so nothing is fetched from
// elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const body = document.body;
const maxUpload = Number(body.dataset.maxUpload);
// Files larger than one multipart part go straight to the bucket.
const directThreshold = 8 << 20;
// pollEvery is how often the panels refresh; history keeps five minutes.
const pollEvery = 2000;
const historyLength = 150;
const minSlots = 30; // a minute: the charts' shortest span
const pageSize = 50;
let filesBackend = body.dataset.files;
let editing = null; // id of the note being edited
let pending = null; // the write to retry once a token is given
let uploading = null; // the XMLHttpRequest of the upload under way

class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// writeHeaders are sent with every write. The session cookie carries the
// sign-in; an Idempotency-Key lets the server answer a retried POST with
// what the first one made instead of making it twice.
function writeHeaders(method) {
  return method === "POST" ? { "Idempotency-Key": crypto.randomUUID() } : {};
}

// api calls the JSON API and throws an APIError with the server's message.
async function api(method, path, data) {
  const headers = writeHeaders(method);
  const init = { method, headers };
  if (data !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(data);
  }
  const res = await fetch(path, init);
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    const message = json && json.error ? json.error.message : `${res.status} ${res.statusText}`;
    throw new APIError(res.status, message);
  }
  return json;
}

function showError(err) {
  const box = $("error");
  box.textContent = err instanceof Error ? err.message : String(err);
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// write runs a change; if the API wants a token, it asks for one and runs
// the change again once it is given.
async function write(action) {
  clearError();
  try {
    await action();
  } catch (err) {
    if (err instanceof APIError && err.status === 401) {
      pending = action;
      askToken(err.message);
      return;
    }
    showError(err);
  }
}

function askToken(message) {
  $("token-form").hidden = false;
  if (message) showError(message);
  $("token").focus();
}

// Signing in trades the token for an HttpOnly session cookie: the page
// never keeps the token.
$("token-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = $("token").value.trim();
  $("token").value = "";
  try {
    await api("POST", "/api/session", { token });
  } catch (err) {
    askToken(err.message);
    return;
  }
  $("token-form").hidden = true;
  $("sign-out").hidden = false;
  clearError();
  const action = pending;
  pending = null;
  if (action) write(action);
});

$("sign-out").addEventListener("click", async () => {
  try {
    await api("DELETE", "/api/session");
    $("sign-out").hidden = true;
  } catch (err) {
    showError(err);
  }
});

function formatBytes(n) {
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function formatTime(iso) {
  return new Date(iso).toLocaleString();
}

// formatAge says how long ago an instant was, in the largest whole unit.
function formatAge(iso) {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function formatRate(perSecond) {
  if (perSecond === null) return "measuring…";
  return `${perSecond < 10 ? perSecond.toFixed(1) : Math.round(perSecond)} per second`;
}

function button(label, text, onClick, secondary = true) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.setAttribute("aria-label", label);
  if (secondary) b.className = "secondary";
  b.addEventListener("click", onClick);
  return b;
}

// buttons keeps an item's buttons together when the line wraps.
function buttons(...items) {
  const span = document.createElement("span");
  span.className = "buttons";
  span.append(...items);
  return span;
}

// set writes text into the element with that id only when it changed, so
// a live region speaks only of changes and selection survives a refresh.
function set(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}

// setState writes a panel's one-line state: in words first, the colour
// only repeats it.
function setState(id, text, ok) {
  set(id, text);
  $(id).className = "state " + (ok === true ? "ok" : ok === false ? "bad" : "");
}

// Storage panels.

// history holds the last five minutes of polls for the charts.
const history = [];
let lastStatus = null;

// refresh reads the three endpoints and redraws every panel. A failed
// endpoint leaves its part saying so; the others still draw.
async function refresh() {
  const [storage, status, ready] = await Promise.all([
    api("GET", "/api/storage").catch(() => null),
    api("GET", "/api/status").catch(() => null),
    fetch("/readyz").then((r) => r.json()).catch(() => null),
  ]);
  const now = Date.now();
  const rates = { reads: null, writes: null };
  if (status && lastStatus) {
    const dt = (now - lastStatus.at) / 1000;
    rates.reads = Math.max(0, status.requests.reads - lastStatus.status.requests.reads) / dt;
    rates.writes = Math.max(0, status.requests.writes - lastStatus.status.requests.writes) / dt;
  }
  if (status) lastStatus = { at: now, status };

  showReadiness(ready);
  if (storage) {
    $("database-backend").textContent = storage.database.backend;
    $("files-backend").textContent = storage.files.backend;
    filesBackend = storage.files.backend;
  }
  const checks = (ready && ready.checks) || {};
  const lag = showDatabase(storage, status, checks.database, rates);
  showReplication(storage);
  showFiles(storage, status, checks.files);
  showCache(storage, status, checks.cache);
  showRegion(storage);
  notes.setTotal(status && status.notes_total);
  files.setTotal(status && status.files_total);

  history.push({ at: now, reads: rates.reads, writes: rates.writes, lag: replicationLag(storage) ?? lag });
  if (history.length > historyLength) history.shift();
  drawCharts();
  body.dataset.polls = Number(body.dataset.polls || 0) + 1; // for the tests
  set("updated", storage ? `updated ${new Date(now).toLocaleTimeString()}` : "the app does not answer");
}

async function poll() {
  try {
    await refresh();
  } finally {
    setTimeout(poll, pollEvery);
  }
}

function showReadiness(ready) {
  const r = $("readiness");
  if (!ready) {
    set("readiness", "The app does not answer.");
    r.className = "bad";
    return;
  }
  const checks = ready.checks || {};
  const down = Object.entries(checks).filter(([, c]) => c.status === "unavailable").map(([name]) => name);
  const up = ready.status === "ok" || ready.status === "degraded";
  set("readiness", up ? "Both answer." : `Not ready: ${down.join(", ") || ready.status}.`);
  r.className = up ? "ok" : "bad";
}

// checkState turns a /readyz check into a panel's state line.
function checkState(id, what, check) {
  if (!check) {
    setState(id, `Cannot tell whether ${what} answers: the app does not answer.`, false);
    return false;
  }
  if (check.status === "ok") {
    setState(id, "Answers.", true);
    return true;
  }
  setState(id, `Cannot reach ${what}: ${check.error || check.status}.`, false);
  return false;
}

// showDatabase fills the database panel and returns the Postgres replica's
// lag in seconds, if there is one.
function showDatabase(storage, status, check, rates) {
  checkState("database-state", "the database", check);
  if (!storage) return null;
  const db = storage.database;
  const region = storage.region || {};
  set("db-engine", db.backend);
  let role = "primary";
  if (storage.replication) role = storage.replication.role;
  else if (region.replica_region === "true") {
    role = db.reads === "replica"
      ? "replica: reads from DATABASE_READ_URL, writes go to the primary"
      : "away from the primary: " + (region.reads || "reads from the primary");
  }
  set("db-role", role);
  set("db-tls", db.tls === "true" ? "yes" : db.tls === "false" ? "no"
    : db.backend === "sqlite" ? "not needed: a file on this machine" : "not reported");
  if (status) {
    set("db-pool", status.pools.length === 0 ? "not reported"
      : status.pools.map((p) => `${p.name}: ${p.in_use} in use, ${p.idle} idle, max ${p.max}`).join("\n"));
    set("db-writes", `${formatRate(rates.writes)} (${status.requests.writes} since start)`);
    set("db-reads", `${formatRate(rates.reads)} (${status.requests.reads} since start)`);
  }
  const seconds = Number(region.replica_lag_seconds);
  return Number.isFinite(seconds) ? seconds : null;
}

function replicationLag(storage) {
  const r = storage && storage.replication;
  return r && Number.isFinite(r.lag_seconds) ? r.lag_seconds : null;
}

// definitions replaces a <dl>'s entries with [term, description, id] rows.
function definitions(list, rows) {
  const items = [];
  for (const [term, desc, id] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = desc;
    if (id) dd.id = id;
    items.push(dt, dd);
  }
  const same = list.children.length === items.length &&
    items.every((el, i) => list.children[i].textContent === el.textContent);
  if (!same) list.replaceChildren(...items);
}

// showReplication draws SQLite's replication (Litestream), or the Postgres
// replica this machine reads from; the panel is hidden when neither is
// there.
function showReplication(storage) {
  const panel = $("panel-replication");
  const r = storage && storage.replication;
  const region = (storage && storage.region) || {};
  if (r) {
    panel.hidden = false;
    const verified = r.last_verified ? `${formatTime(r.last_verified)} (${formatAge(r.last_verified)})` : "not verified yet";
    definitions($("replication-list"), [
      ["Role", r.role, "repl-role"],
      ["Lease holder", r.holder, "repl-holder"],
      ["This machine", r.machine, "repl-machine"],
      ["Durability", r.durability === "replicated"
        ? "replicated: a write returns once it is in the replica"
        : "local: a write returns once it is on this machine's disk", "repl-durability"],
      ["Replica", r.replica, "repl-replica"],
      ["Local TXID", r.local_txid, "repl-local-txid"],
      ["Replicated TXID", r.replicated_txid, "repl-replicated-txid"],
      ["Lag", `${r.lag_seconds} s`, "repl-lag"],
      ["Last verified backup", verified, "repl-verified"],
    ]);
    const caughtUp = r.local_txid === r.replicated_txid;
    setState("replication-state", caughtUp
      ? "Caught up: the replica has every transaction."
      : `Behind: the replica is ${r.lag_seconds} s behind this machine.`, caughtUp);
    return;
  }
  if (region.replica_lag_seconds !== undefined) {
    panel.hidden = false;
    const unit = (v, u) => (v === "unknown" ? v : v + u);
    definitions($("replication-list"), [
      ["Replica", "Postgres, streaming", "repl-kind"],
      ["Lag", unit(region.replica_lag_seconds, " s"), "repl-lag-seconds"],
      ["Behind by", unit(region.replica_lag_bytes, " bytes"), "repl-lag-bytes"],
      ["Reads go to", storage.database.reads === "replica" ? "the replica (DATABASE_READ_URL)" : storage.database.reads || region.reads, "repl-reads"],
      ["Catch-up wait", region.replica_wait, "repl-wait"],
    ]);
    const known = region.replica_lag_seconds !== "unknown";
    setState("replication-state", known ? "The replica answers." : "Cannot reach the replica: its lag is unknown.", known);
    return;
  }
  panel.hidden = true;
}

function showFiles(storage, status, check) {
  checkState("files-state", "the file store", check);
  if (!storage) return;
  const f = storage.files;
  set("fs-backend", f.backend === "s3" ? `S3 (${f.endpoint || "AWS"})` : f.backend === "local" ? "a directory on this machine" : f.backend);
  set("fs-where-label", f.bucket !== undefined ? "Bucket" : f.dir !== undefined ? "Directory" : "Where");
  set("fs-where", f.bucket ?? f.dir ?? "not reported");
  if (status) {
    set("fs-access", status.files.public
      ? "public: the bucket's own URLs, which never expire"
      : "private: signed links that expire");
  }
}

function showCache(storage, status, check) {
  if (!storage) return;
  const c = storage.cache;
  if (c.backend !== "redis") {
    setState("cache-state", "No Redis (REDIS_URL is not set): reads go to the database.", null);
    set("cache-backend", "none");
    set("cache-ratio", "no cache");
    set("cache-ttl", "no cache");
    return;
  }
  set("cache-backend", "Redis");
  set("cache-ttl", c.cache_ttl);
  if (!check) setState("cache-state", "Cannot tell whether Redis answers: the app does not answer.", false);
  else if (check.status === "ok") setState("cache-state", "Up: Redis answers.", true);
  else setState("cache-state", `Degraded: Redis does not answer (${check.error || check.status}); reads go to the database.`, false);
  if (status) {
    const { hits, misses } = status.cache;
    set("cache-ratio", hits + misses === 0 ? "no reads yet"
      : `${Math.round((100 * hits) / (hits + misses))}% (${hits} hits, ${misses} misses)`);
  }
}

// showRegion says where this machine runs, where the primary is and where
// reads and writes go. /api/storage names a region "(not set)" when
// FLY_REGION or PRIMARY_REGION is missing, and then regions change nothing
// (docs/regions.md).
function showRegion(storage) {
  if (!storage) return;
  const r = storage.region || {};
  const notSet = "(not set)";
  if (!r.region || !r.primary_region || r.region === notSet || r.primary_region === notSet) {
    setState("region-state", "Regions are not set (FLY_REGION, PRIMARY_REGION): this machine serves every read and write.", null);
    set("region-here", r.region || notSet);
    set("region-primary", r.primary_region || notSet);
    set("region-writes", "this machine");
    set("region-reads", "this machine");
    return;
  }
  const primary = r.region === r.primary_region;
  setState("region-state", primary ? `This machine is in ${r.region}, the primary region.`
    : `This machine is in ${r.region}; the primary region is ${r.primary_region}.`, null);
  set("region-here", r.region);
  set("region-primary", r.primary_region);
  set("region-writes", r.writes || "this machine");
  set("region-reads", r.reads);
}

// Charts.

// sparkline draws series (each a list of numbers or nulls, oldest first)
// into el as an SVG with a text summary for screen readers.
function sparkline(el, series, unit) {
  const w = 300, h = 80, pad = 2;
  const values = series.flatMap((s) => s.values).filter((v) => v !== null);
  const max = Math.max(1e-9, ...values);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const latest = series.map((s) => {
    const last = s.values.filter((v) => v !== null).at(-1);
    return `${s.name} ${last === undefined ? "none yet" : +last.toFixed(2) + unit}`;
  });
  svg.setAttribute("aria-label", `Latest: ${latest.join(", ")}; highest shown: ${+max.toFixed(2)}${unit}.`);
  // The x axis spans at least a minute, and up to five as polls come in,
  // newest at the right edge.
  const slots = Math.max(minSlots, ...series.map((s) => s.values.length));
  for (const s of series) {
    const points = [];
    const offset = slots - s.values.length;
    s.values.forEach((v, i) => {
      if (v === null) return;
      const x = ((offset + i) / (slots - 1)) * w;
      const y = h - pad - (v / max) * (h - 2 * pad);
      points.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    });
    if (points.length === 0) continue;
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("class", s.className);
    svg.append(line);
  }
  // The scale is text beside the drawing, which is stretched to fit.
  const scale = document.createElement("small");
  scale.className = "scale";
  scale.textContent = values.length ? `top: ${+max.toFixed(2)}${unit}` : "no figures yet";
  scale.setAttribute("aria-hidden", "true");
  el.replaceChildren(scale, svg);
}

function drawCharts() {
  sparkline($("chart-requests"), [
    { name: "reads", className: "reads", values: history.map((p) => p.reads) },
    { name: "writes", className: "writes", values: history.map((p) => p.writes) },
  ], "/s");
  if (!$("panel-replication").hidden) {
    sparkline($("chart-lag"), [{ name: "lag", className: "lag", values: history.map((p) => p.lag) }], " s");
  }
}

// Lists with a cursor: notes and files.

// list pages through one collection of the API with "Load more".
class List {
  constructor(name, render) {
    this.name = name; // "notes" or "files": the API path and the JSON key
    this.render = render;
    this.cursor = null;
    this.shown = 0;
    this.total = null; // from /api/status; null until it gives one
    this.done = false;
    this.loaded = false; // a page has come since the last reload
    $(`${name}-more`).addEventListener("click", () => this.more().catch(showError));
  }

  // reload starts again from the newest.
  async reload() {
    this.cursor = null;
    this.shown = 0;
    this.done = false;
    this.loaded = false;
    $(this.name).replaceChildren();
    await this.more();
  }

  async more() {
    const more = $(`${this.name}-more`);
    more.disabled = true;
    try {
      const cursor = this.cursor ? `&cursor=${encodeURIComponent(this.cursor)}` : "";
      const page = await api("GET", `/api/${this.name}?limit=${pageSize}${cursor}`);
      const items = page[this.name];
      $(this.name).append(...items.map(this.render));
      this.shown += items.length;
      this.cursor = page.next_cursor;
      this.done = !page.next_cursor;
      this.loaded = true;
    } finally {
      more.disabled = false;
    }
    this.showCount();
  }

  // removed takes a deleted item off the list and moves focus to its
  // neighbour, so a keyboard user stays in the list.
  removed(li) {
    const next = li.nextElementSibling || li.previousElementSibling;
    li.remove();
    this.shown--;
    this.showCount();
    (next ? next.querySelector("button") : $(this.name === "notes" ? "note-title" : "file-input")).focus();
  }

  // setTotal takes the total /api/status gives with each poll: counted
  // every few seconds, so it may trail this page's own writes by as much.
  setTotal(total) {
    this.total = Number.isInteger(total) ? total : null;
    this.showCount();
  }

  // showCount says "50 of 253" once a page has loaded. Without a total
  // (the database cannot count, or no poll has answered yet) a list read
  // to its end is its own total. A total counted before some of the items
  // shown were written is raised to what is shown: never "50 of 3".
  showCount() {
    if (!this.loaded) return; // "0 of 253" would be wrong while the first page loads
    const n = this.shown;
    $(`${this.name}-more`).hidden = this.done;
    $(`${this.name}-empty`).hidden = n > 0 || !this.done;
    const total = this.total ?? (this.done ? n : null);
    set(`${this.name}-count`, total === null ? `${n} shown, more to load` : `${n} of ${Math.max(n, total)}`);
  }
}

// confirmDelete asks before a delete with a modal dialog, which keeps focus
// inside it and gives it back to the button that opened it. The answer
// comes from the button pressed (or Escape), not from the dialog's close
// event, which the browser fires later and could pair with the next
// question.
let answer = null; // resolves the question on screen
function confirmDelete(question) {
  settle(false);
  $("confirm-text").textContent = question;
  $("confirm").showModal();
  return new Promise((resolve) => { answer = resolve; });
}

function settle(yes) {
  const resolve = answer;
  answer = null;
  if (resolve) resolve(yes);
}

$("confirm").querySelector("form").addEventListener("submit", (e) => settle(e.submitter?.value === "delete"));
$("confirm").addEventListener("cancel", () => settle(false));

// Notes.
const notes = new List("notes", noteItem);

function noteItem(n) {
  const li = document.createElement("li");
  li.dataset.id = n.id;
  const text = document.createElement("div");
  text.className = "grow";
  const title = document.createElement("strong");
  title.textContent = n.title;
  const when = document.createElement("small");
  when.textContent = " " + formatTime(n.updated_at);
  const p = document.createElement("p");
  p.textContent = n.body;
  text.append(title, when, p);
  li.append(text, buttons(
    button(`Edit note ${n.title}`, "Edit", () => startEdit(n)),
    button(`Delete note ${n.title}`, "Delete", async () => {
      if (!await confirmDelete(`Delete the note “${n.title}”? This cannot be undone.`)) return;
      write(async () => {
        await api("DELETE", `/api/notes/${n.id}`);
        if (editing === n.id) stopEdit();
        notes.removed(li);
      });
    })));
  return li;
}

function startEdit(n) {
  editing = n.id;
  $("note-title").value = n.title;
  $("note-body").value = n.body;
  $("note-save").textContent = "Save note";
  $("note-cancel").hidden = false;
  $("note-title").focus();
}

function stopEdit() {
  editing = null;
  $("note-form").reset();
  $("note-save").textContent = "Add note";
  $("note-cancel").hidden = true;
}

$("note-cancel").addEventListener("click", stopEdit);

$("note-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const note = { title: $("note-title").value, body: $("note-body").value };
  write(async () => {
    if (editing) await api("PUT", `/api/notes/${editing}`, note);
    else await api("POST", "/api/notes", note);
    stopEdit();
    await notes.reload();
  });
});

// Files.
const files = new List("files", fileItem);

function fileItem(f) {
  const li = document.createElement("li");
  li.dataset.id = f.id;
  const text = document.createElement("div");
  text.className = "grow";
  const name = document.createElement("strong");
  name.textContent = f.name;
  const meta = document.createElement("small");
  meta.textContent = ` ${formatBytes(f.size)}, ${f.content_type}`;
  text.append(name, meta);
  li.append(text, buttons(
    button(`Download ${f.name}`, "Download", () => download(f)),
    button(`Delete file ${f.name}`, "Delete", async () => {
      if (!await confirmDelete(`Delete the file “${f.name}”? This cannot be undone.`)) return;
      write(async () => {
        await api("DELETE", `/api/files/${f.id}`);
        files.removed(li);
      });
    })));
  return li;
}

// download asks the API for a link (presigned, public or signed by the
// app) and follows it.
async function download(f) {
  clearError();
  try {
    const { url } = await api("GET", `/api/files/${f.id}/url`);
    const a = document.createElement("a");
    a.href = url;
    a.download = f.name;
    a.rel = "noopener";
    document.body.append(a);
    a.click();
    a.remove();
  } catch (err) {
    showError(err);
  }
}

// Cancelled is how send rejects when the person cancels the upload.
class Cancelled extends Error {}

// send runs one XHR with upload progress, resolving with the response.
// The Cancel button aborts it.
function send(method, url, headers, payload) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    uploading = xhr;
    xhr.open(method, url);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      setProgress(e.loaded, e.total);
      // What the browser itself last reported sending.
      $("upload-progress").dataset.sent = e.loaded;
    });
    xhr.addEventListener("load", () => {
      let json = null;
      try { json = JSON.parse(xhr.responseText); } catch { /* the bucket answers XML */ }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(json);
      const message = json && json.error ? json.error.message
        : `the ${url.startsWith("/") ? "app" : "file store"} refused the upload (${xhr.status})`;
      reject(new APIError(xhr.status, message));
    });
    xhr.addEventListener("abort", () => reject(new Cancelled("upload cancelled")));
    xhr.addEventListener("error", () => reject(new Error("the upload failed: the network or the file store is unreachable")));
    xhr.addEventListener("loadend", () => { uploading = null; });
    xhr.send(payload);
  });
}

function setProgress(loaded, total) {
  const pct = total ? Math.round((loaded / total) * 100) : 100;
  $("upload-progress").value = pct;
  $("upload-status").textContent = `${pct}% (${formatBytes(loaded)} of ${formatBytes(total)})`;
}

async function upload(file) {
  setProgress(0, file.size);
  if (filesBackend === "s3" && file.size > directThreshold) {
    // Straight to the bucket: ask for a URL, PUT the bytes, complete. An
    // upload cancelled here is never completed, and the sweep removes it.
    const intent = await api("POST", "/api/files/uploads",
      { name: file.name, content_type: file.type || "application/octet-stream", size: file.size });
    await send(intent.method, intent.url, intent.headers, file);
    await api("POST", `/api/files/uploads/${intent.id}/complete`);
  } else {
    const form = new FormData();
    form.append("file", file);
    await send("POST", "/api/files", writeHeaders("POST"), form);
  }
  setProgress(file.size, file.size);
  $("upload-status").textContent = `100%: uploaded ${file.name}.`;
}

$("upload-cancel").addEventListener("click", () => {
  if (uploading) uploading.abort();
});

$("file-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const file = $("file-input").files[0];
  if (!file) return;
  if (file.size > maxUpload) {
    showError(`${file.name} is ${formatBytes(file.size)}; the limit is ${formatBytes(maxUpload)}.`);
    return;
  }
  const submit = $("file-upload");
  const cancel = $("upload-cancel");
  submit.disabled = true;
  cancel.hidden = false;
  write(async () => {
    try {
      await upload(file);
      $("file-form").reset();
      await files.reload();
    } catch (err) {
      if (!(err instanceof Cancelled)) throw err;
      $("upload-progress").value = 0;
      $("upload-status").textContent = `Cancelled: ${file.name} was not uploaded.`;
    } finally {
      submit.disabled = false;
      cancel.hidden = true;
      submit.focus();
    }
  });
});

// Start. On a phone the storage panels come first, and the notes and files
// sections start closed, one tap away.
if (window.matchMedia("(max-width: 40rem)").matches) {
  $("notes-section").open = false;
  $("files-section").open = false;
}
api("GET", "/api/session").then((s) => {
  if (s.signed_in) $("sign-out").hidden = false;
  else if (s.token_required) askToken();
}).catch(showError);
$("max-upload").textContent = formatBytes(maxUpload);
poll();
notes.reload().catch(showError);
files.reload().catch(showError);
