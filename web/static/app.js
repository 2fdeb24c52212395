// The page talks to the same JSON API as any other client. Uploads go
// through XMLHttpRequest, whose upload progress events fetch lacks; large
// files on S3 go straight to the bucket through a presigned URL.
"use strict";

const $ = (id) => document.getElementById(id);
const body = document.body;
const maxUpload = Number(body.dataset.maxUpload);
// Files larger than one multipart part go straight to the bucket.
const directThreshold = 8 << 20;
let filesBackend = body.dataset.files;
let editing = null; // id of the note being edited
let pending = null; // the write to retry once a token is given

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

// Status: the active backends and whether they answer.
async function loadStatus() {
  try {
    const s = await api("GET", "/api/storage");
    $("database-backend").textContent = s.database.backend;
    $("files-backend").textContent = s.files.backend;
    filesBackend = s.files.backend;
    showRegion(s.region);
  } catch (err) {
    showError(err);
  }
  const r = $("readiness");
  try {
    const res = await fetch("/readyz");
    const ready = await res.json();
    const checks = ready.checks || {};
    const down = Object.entries(checks).filter(([, c]) => c.status === "unavailable").map(([name]) => name);
    const up = ready.status === "ok" || ready.status === "degraded";
    r.textContent = up ? "Both answer." : `Not ready: ${down.join(", ") || ready.status}.`;
    r.className = up ? "ok" : "bad";
    // Redis is optional: without it, reads go to the database.
    $("cache-status").textContent = !checks.cache ? ""
      : checks.cache.status === "ok" ? "The Redis cache answers."
      : "The Redis cache does not answer; reads go to the database.";
  } catch {
    r.textContent = "The app does not answer.";
    r.className = "bad";
  }
}

// showRegion says where this machine runs, where the primary is, where
// reads go and how far the replica is behind, when regions are configured:
// /api/storage names a region "(not set)" when FLY_REGION or PRIMARY_REGION
// is missing, and then regions change nothing (docs/regions.md).
function showRegion(r) {
  const el = $("region");
  const notSet = "(not set)";
  if (!r || !r.region || !r.primary_region || r.region === notSet || r.primary_region === notSet) {
    el.hidden = true;
    return;
  }
  let text = r.region === r.primary_region
    ? `This machine is in ${r.region}, the primary region.`
    : `This machine is in ${r.region}; the primary region is ${r.primary_region}.`;
  text += ` Reads: ${r.reads}.`;
  if (r.replica_lag_seconds) {
    const unit = (v, u) => (v === "unknown" ? v : v + u);
    text += ` Replica lag: ${unit(r.replica_lag_seconds, " s")}, ${unit(r.replica_lag_bytes, " bytes")}.`;
  }
  el.textContent = text;
  el.hidden = false;
}

// Notes.
async function loadNotes() {
  const { notes } = await api("GET", "/api/notes?limit=200");
  const list = $("notes");
  list.replaceChildren(...notes.map(noteItem));
  $("notes-empty").hidden = notes.length > 0;
}

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
    button(`Delete note ${n.title}`, "Delete", () => write(async () => {
      await api("DELETE", `/api/notes/${n.id}`);
      if (editing === n.id) stopEdit();
      await loadNotes();
    }))));
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
    await loadNotes();
  });
});

// Files.
async function loadFiles() {
  const { files } = await api("GET", "/api/files?limit=200");
  $("files").replaceChildren(...files.map(fileItem));
  $("files-empty").hidden = files.length > 0;
}

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
    button(`Delete file ${f.name}`, "Delete", () => write(async () => {
      await api("DELETE", `/api/files/${f.id}`);
      await loadFiles();
    }))));
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

// send runs one XHR with upload progress, resolving with the response.
function send(method, url, headers, payload) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
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
    xhr.addEventListener("error", () => reject(new Error("the upload failed: the network or the file store is unreachable")));
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
    // Straight to the bucket: ask for a URL, PUT the bytes, complete.
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

$("file-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const file = $("file-input").files[0];
  if (!file) return;
  if (file.size > maxUpload) {
    showError(`${file.name} is ${formatBytes(file.size)}; the limit is ${formatBytes(maxUpload)}.`);
    return;
  }
  const submit = $("file-upload");
  submit.disabled = true;
  write(async () => {
    try {
      await upload(file);
      $("file-form").reset();
      await loadFiles();
    } finally {
      submit.disabled = false;
    }
  });
});

// Start.
api("GET", "/api/session").then((s) => {
  if (s.signed_in) $("sign-out").hidden = false;
  else if (s.token_required) askToken();
}).catch(showError);
$("max-upload").textContent = formatBytes(maxUpload);
loadStatus();
setInterval(loadStatus, 15000);
loadNotes().catch(showError);
loadFiles().catch(showError);
