// The library view: the song list (kept in step with the server through its event stream), the model menu,
// uploads, re-runs, cancels and deletes.
import { $, api, fmtTime, getJson, postJson, setStatus } from "./api.js";
import { loadModel, pruneWorking, saveModel } from "./storage.js";
import { onJobUpdate, openWhenSeparated } from "./progressive.js";

export const library = { songs: [], events: null, retry: 0, refreshTimer: 0 };
const FINISHED = ["done", "failed", "cancelled", "interrupted"];

export async function loadModels() {
  const { models, default: def } = await getJson("/api/models");
  const sel = $("#model-select");
  const remembered = loadModel();
  const chosen = models.some((m) => m.name === remembered) ? remembered : def;
  sel.innerHTML = "";
  for (const m of models) {
    const o = document.createElement("option");
    o.value = m.name; o.textContent = `${m.name} — ${m.sources.join(", ")}`; o.title = `${m.description} (${m.licence})`;
    if (m.name === chosen) o.selected = true;
    sel.append(o);
  }
  sel.onchange = () => saveModel(sel.value);
}

export async function refreshSongs() {
  library.songs = (await getJson("/api/songs")).songs;
  pruneWorking(library.songs.map((s) => s.id)); // songs deleted here or in another tab
  renderSongs();
  // a job's events may all have come before its song was in the list (a short song on a busy machine)
  for (const s of library.songs) if (s.jobs.length) onJobUpdate(s, s.jobs[s.jobs.length - 1]);
}

// Refresh soon, once for a burst of events.
function refreshSoon() {
  clearTimeout(library.refreshTimer);
  library.refreshTimer = setTimeout(() => refreshSongs().catch(() => {}), 100);
}

const percent = (job) => Math.round(100 * (job ? job.progress || 0 : 0));

function showProgress(row, title, pct) {
  const bar = $(".bar", row);
  $("div", bar).style.width = `${pct}%`; // CSSOM, not a style attribute: the CSP allows no inline style
  bar.setAttribute("aria-valuenow", pct);
  bar.setAttribute("aria-label", `Separation progress of ${title}`);
  $(".pct", row).textContent = `${pct}%`;
}

export function renderSongs() {
  const body = $("#songs tbody");
  body.innerHTML = "";
  $("#empty-library").classList.toggle("hidden", library.songs.length > 0);
  for (const s of library.songs) {
    const job = s.jobs[s.jobs.length - 1];
    const tr = document.createElement("tr");
    tr.dataset.song = s.id;
    tr.innerHTML = `<td class="title"></td><td>${fmtTime(s.duration)}</td>
      <td class="status status-${s.status}">${s.status}${job && job.error ? ": " : ""}<span class="err"></span></td>
      <td><div class="bar ${s.status === "done" ? "done" : ""}" role="progressbar" aria-valuemin="0" aria-valuemax="100"><div></div></div><span class="pct muted"></span></td>
      <td class="actions"></td>`;
    $(".title", tr).textContent = s.title;
    showProgress(tr, s.title, percent(job));
    if (job && job.error) $(".err", tr).textContent = job.error;
    const actions = $(".actions", tr);
    const btn = (label, fn, cls = "") => {
      const b = document.createElement("button");
      b.textContent = label; b.className = cls; b.onclick = fn; b.setAttribute("aria-label", `${label} “${s.title}”`);
      actions.append(b);
      return b;
    };
    // the latest finished stems stay playable while a re-run is queued, running, cancelled, failed or interrupted
    if (s.stems.length) btn("Open mixer", () => { location.hash = `#/song/${s.id}`; }, "primary open");
    // a first separation plays while it runs (progressive.js): the mixer opens with the first seconds
    else if (s.status === "queued" || s.status === "running") btn("Listen", () => { location.hash = `#/song/${s.id}`; }, "listen");
    // a job that has ended meanwhile (409) shows its real state after the refresh
    if (s.status === "queued" || s.status === "running") btn("Cancel", () => api(`/api/jobs/${job.id}/cancel`, { method: "POST" }).catch((e) => setStatus(e.message)).finally(refreshSongs), "cancel");
    if (FINISHED.includes(s.status)) btn("Re-run", () => rerun(s.id), "rerun");
    btn("Delete", () => deleteSong(s), "delete");
    body.append(tr);
  }
}

async function deleteSong(song) {
  if (!confirm(`Delete “${song.title}” and its stems?`)) return;
  try { await api(`/api/songs/${song.id}`, { method: "DELETE" }); } catch (e) { setStatus(e.message); }
  await refreshSongs();
}

async function rerun(songId) {
  try {
    await postJson(`/api/songs/${songId}/jobs`, { model: $("#model-select").value });
    await refreshSongs();
  } catch (e) { setStatus(e.message); }
}

// A job update: moves its row's bar and status; a job of a song not listed here (uploaded in another tab) or a
// job that has just finished refreshes the whole list.
function onJobs(jobs) {
  for (const j of jobs) {
    const song = library.songs.find((s) => s.jobs.some((x) => x.id === j.id));
    if (!song) { if (!FINISHED.includes(j.status)) refreshSoon(); continue; }
    const job = song.jobs.find((x) => x.id === j.id);
    const was = job.status;
    Object.assign(job, j);
    onJobUpdate(song, j); // a song uploaded here opens as soon as its first seconds are separated
    if (job !== song.jobs[song.jobs.length - 1]) continue;
    song.status = j.status;
    if (was !== j.status && FINISHED.includes(j.status)) refreshSoon();
    const row = document.querySelector(`tr[data-song="${song.id}"]`);
    if (row) { showProgress(row, song.title, percent(j)); $(".status", row).firstChild.textContent = j.status; }
  }
}

// The server's event stream. A reconnect (after a restart of the server, or a network error) refreshes the list,
// since anything may have changed meanwhile; a stream the browser has given up on is opened again, backing off
// to 10 s. Events other than job updates (songs added or deleted elsewhere) refresh the list.
export function listenEvents() {
  const es = new EventSource("/api/events");
  library.events = es;
  es.onopen = () => { library.retry = 0; refreshSoon(); };
  es.onmessage = (ev) => {
    let data = null;
    try { data = JSON.parse(ev.data); } catch { return; }
    if (data && Array.isArray(data.jobs)) onJobs(data.jobs);
    if (data && (data.songs || data.song || data.library)) refreshSoon();
  };
  for (const name of ["song", "songs", "library"]) es.addEventListener(name, refreshSoon);
  es.onerror = () => {
    if (es.readyState !== EventSource.CLOSED) return; // the browser reconnects by itself
    es.close();
    library.retry = Math.min(10_000, (library.retry || 500) * 2);
    setTimeout(listenEvents, library.retry);
  };
}
export async function uploadAll(files) {
  // one song and one job per file, uploaded one after the other (the server queues the jobs); every refusal is
  // listed, one line per file (the server's messages name the file)
  const err = $("#upload-error");
  err.classList.add("hidden");
  const failures = [];
  // one song dropped opens in the mixer as soon as its first seconds are separated; a batch stays in the library
  const one = Array.from(files).length === 1;
  for (const f of Array.from(files)) {
    const msg = await upload(f, one);
    if (msg) { failures.push(msg); err.textContent = failures.join("\n"); err.classList.remove("hidden"); }
  }
}

// Upload one file; resolves to an error message, or null when the server accepted it.
async function upload(file, openWhenReady) {
  const form = new FormData();
  form.append("model", $("#model-select").value);
  form.append("file", file, file.name);
  const bar = $("#upload-progress");
  bar.classList.remove("hidden");
  // XMLHttpRequest, because fetch cannot report upload progress.
  const error = await new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/songs");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) $("div", bar).style.width = `${(100 * e.loaded) / e.total}%`; };
    xhr.onload = () => {
      bar.classList.add("hidden");
      let msg = null;
      if (xhr.status >= 300) {
        msg = `${file.name}: upload failed (${xhr.status})`;
        try { msg = JSON.parse(xhr.responseText).error || msg; } catch { /* keep */ }
      } else if (openWhenReady) {
        try { openWhenSeparated(JSON.parse(xhr.responseText).id); } catch { /* not JSON: stay in the library */ }
      }
      resolve(msg);
    };
    xhr.onerror = () => { bar.classList.add("hidden"); resolve(`${file.name}: upload failed (network error)`); };
    xhr.send(form);
  });
  await refreshSongs();
  return error;
}

export function setupDropzone() {
  const dz = $("#dropzone");
  const input = $("#file-input");
  input.onchange = () => { const files = Array.from(input.files); input.value = ""; uploadAll(files); };
  dz.addEventListener("keydown", (e) => { if (e.key === "Enter") input.click(); });
  for (const t of ["dragenter", "dragover"]) dz.addEventListener(t, (e) => { e.preventDefault(); dz.classList.add("over"); });
  for (const t of ["dragleave", "drop"]) dz.addEventListener(t, (e) => { e.preventDefault(); dz.classList.remove("over"); });
  dz.addEventListener("drop", (e) => { e.stopPropagation(); uploadAll(e.dataTransfer.files); });
  // a file dropped anywhere else would make the browser navigate away from the studio to open it
  for (const t of ["dragover", "drop"]) window.addEventListener(t, (e) => { e.preventDefault(); });
}

