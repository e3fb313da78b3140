// stemwright studio — library + live stem mixer. Plain ES modules + Web Audio API, no build step.
//
// Audio graph per stem (all on one AudioContext clock, so stems stay sample-synchronised):
//   AudioBufferSource -> lowshelf(250 Hz) -> peaking(1 kHz) -> highshelf(4 kHz) -> StereoPanner -> fader Gain -> master Gain
// Speed and transpose act on the mix as a whole: every source plays at playbackRate = speed (one rate and one start
// time for all, so the stems stay sample-synchronous) and one SoundTouch pitch shifter after the mix bus moves the
// pitch by 2^(semitones/12) / speed, which undoes the rate's pitch change and adds the transpose:
//   strips' faders + original -> mix bus/A-B gains -> time/pitch (bypassed at 100 % and 0 st) -> master Gain
// The mix document built from this state is the one the server renders (docs/ARCHITECTURE.md): gain in dB,
// pan with the StereoPannerNode law, mute/solo as in a DAW, so what plays here is what the export writes.

const COLORS = { vocals: "#ff7aa8", drums: "#ffb84f", bass: "#7d8bff", other: "#5fd38d", guitar: "#ffe066", piano: "#b59cff",
  no_vocals: "#5fd3c8", accompaniment: "#5fd3c8" };
const EQ = { low: { type: "lowshelf", hz: 250 }, mid: { type: "peaking", hz: 1000, q: 0.7071 }, high: { type: "highshelf", hz: 4000 } };
const $ = (sel, root = document) => root.querySelector(sel);
import { SoundTouch } from "./vendor/soundtouchjs/soundtouch.js";

const api = async (path, opts = {}) => {
  const res = await fetch(path, opts);
  if (!res.ok) {
    let msg = `${res.status}`;
    try { msg = (await res.json()).error || msg; } catch { /* not JSON */ }
    throw new Error(msg);
  }
  return res;
};
const fmtTime = (s) => { s = Math.max(0, s || 0); const m = Math.floor(s / 60); return `${m}:${(s - 60 * m).toFixed(1).padStart(4, "0")}`; };
const dbToGain = (db) => (db <= -60 ? 0 : Math.pow(10, db / 20));
const setStatus = (t) => { $("#status").textContent = t; };

// ---------------------------------------------------------------------------------------------------------------
// Library view
// ---------------------------------------------------------------------------------------------------------------
const library = { songs: [], events: null };

async function loadModels() {
  const { models, default: def } = await (await api("/api/models")).json();
  const sel = $("#model-select");
  sel.innerHTML = "";
  for (const m of models) {
    const o = document.createElement("option");
    o.value = m.name; o.textContent = `${m.name} — ${m.sources.join(", ")}`; o.title = `${m.description} (${m.licence})`;
    if (m.name === def) o.selected = true;
    sel.append(o);
  }
}

async function refreshSongs() {
  library.songs = (await (await api("/api/songs")).json()).songs;
  renderSongs();
}

function renderSongs() {
  const body = $("#songs tbody");
  body.innerHTML = "";
  $("#empty-library").classList.toggle("hidden", library.songs.length > 0);
  for (const s of library.songs) {
    const job = s.jobs[s.jobs.length - 1];
    const tr = document.createElement("tr");
    tr.dataset.song = s.id;
    const pct = Math.round(100 * (job ? job.progress : 0));
    tr.innerHTML = `<td class="title"></td><td>${fmtTime(s.duration)}</td>
      <td class="status status-${s.status}">${s.status}${job && job.error ? ": " : ""}<span class="err"></span></td>
      <td><div class="bar ${s.status === "done" ? "done" : ""}" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct}"><div></div></div><span class="pct muted">${pct}%</span></td>
      <td class="actions"></td>`;
    $(".title", tr).textContent = s.title;
    $(".bar > div", tr).style.width = `${pct}%`; // CSSOM, not a style attribute: the CSP allows no inline style
    if (job && job.error) $(".err", tr).textContent = job.error;
    const actions = $(".actions", tr);
    const btn = (label, fn, cls = "") => { const b = document.createElement("button"); b.textContent = label; b.className = cls; b.onclick = fn; actions.append(b); return b; };
    // the latest finished stems stay playable while a re-run is queued, running, cancelled, failed or interrupted
    if (s.stems.length) btn("Open mixer", () => { location.hash = `#/song/${s.id}`; }, "primary open");
    if (s.status === "queued" || s.status === "running") btn("Cancel", () => api(`/api/jobs/${job.id}/cancel`, { method: "POST" }).then(refreshSongs).catch((e) => setStatus(e.message)));
    if (["failed", "cancelled", "interrupted", "done"].includes(s.status)) btn("Re-run", () => rerun(s.id));
    btn("Delete", () => { if (confirm(`Delete “${s.title}” and its stems?`)) api(`/api/songs/${s.id}`, { method: "DELETE" }).then(refreshSongs); });
    body.append(tr);
  }
}

async function rerun(songId) {
  try {
    await api(`/api/songs/${songId}/jobs`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: $("#model-select").value }) });
    await refreshSongs();
  } catch (e) { setStatus(e.message); }
}

function listenEvents() {
  if (library.events) return;
  library.events = new EventSource("/api/events");
  library.events.onmessage = (ev) => {
    const { jobs } = JSON.parse(ev.data);
    let finished = false;
    for (const j of jobs) {
      const song = library.songs.find((s) => s.jobs.some((x) => x.id === j.id));
      if (!song) continue;
      const job = song.jobs.find((x) => x.id === j.id);
      const was = job.status;
      Object.assign(job, j);
      song.status = j.status;
      if (was !== j.status && ["done", "failed", "cancelled", "interrupted"].includes(j.status)) finished = true;
      const row = document.querySelector(`tr[data-song="${song.id}"]`);
      if (row) {
        const pct = Math.round(100 * (j.progress || 0));
        $(".bar > div", row).style.width = `${pct}%`;
        $(".bar", row).setAttribute("aria-valuenow", pct);
        $(".pct", row).textContent = `${pct}%`;
        $(".status", row).firstChild.textContent = j.status;
      }
    }
    if (finished) refreshSongs();
  };
}

async function uploadAll(files) {
  // one song and one job per file, uploaded one after the other (the server queues the jobs); every refusal is
  // listed, one line per file (the server's messages name the file)
  const err = $("#upload-error");
  err.classList.add("hidden");
  const failures = [];
  for (const f of Array.from(files)) {
    const msg = await upload(f);
    if (msg) { failures.push(msg); err.textContent = failures.join("\n"); err.classList.remove("hidden"); }
  }
}

// Upload one file; resolves to an error message, or null when the server accepted it.
async function upload(file) {
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
      }
      resolve(msg);
    };
    xhr.onerror = () => { bar.classList.add("hidden"); resolve(`${file.name}: upload failed (network error)`); };
    xhr.send(form);
  });
  await refreshSongs();
  return error;
}

function setupDropzone() {
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

// ---------------------------------------------------------------------------------------------------------------
// Mixer
// ---------------------------------------------------------------------------------------------------------------
const mixer = {
  ctx: null, songId: null, song: null, strips: [], master: null, duration: 0,
  playing: false, startCtxTime: 0, startOffset: 0, sources: [],
  loop: { on: false, start: 0, end: 0 }, focused: null, mixId: null, raf: 0,
  dirty: true, draws: 0, autosaveTimer: 0, restoring: false, analysis: null, clicks: [], clickedUntil: 0,
  original: null, ab: false, mixBus: null, history: [], future: [], lastDoc: null, historyTimer: 0,
  speed: 1, semitones: 0, pitchIn: null, pitchNode: null,
  view: { zoom: 1, start: 0 }, masterImage: null, masterKey: "", rulerLabels: [], compare: null,
};

function audioContext() {
  if (!mixer.ctx) {
    mixer.ctx = new AudioContext({ latencyHint: "interactive" });
    mixer.master = mixer.ctx.createGain();
    mixer.master.connect(mixer.ctx.destination);
    mixer.masterMeter = makeMeter(mixer.ctx, mixer.master);
    mixer.pitchIn = mixer.ctx.createGain(); // the mix and the original, before speed/transpose
    mixer.mixBus = mixer.ctx.createGain(); // every strip's fader; muted while A/B plays the original
    mixer.mixBus.connect(mixer.pitchIn);
    routePitch();
  }
  return mixer.ctx;
}

function buildStripGraph(strip) {
  const ctx = audioContext();
  const filters = Object.entries(EQ).map(([, spec]) => {
    const f = ctx.createBiquadFilter();
    f.type = spec.type; f.frequency.value = spec.hz; if (spec.q) f.Q.value = spec.q; f.gain.value = 0;
    return f;
  });
  const panner = ctx.createStereoPanner();
  const fader = ctx.createGain();
  filters[0].connect(filters[1]); filters[1].connect(filters[2]); filters[2].connect(panner); panner.connect(fader); fader.connect(mixer.mixBus);
  Object.assign(strip, { input: filters[0], filters, panner, fader, meter: makeMeter(ctx, fader) });
}

// -- level meters: the peak of the last ~21 ms (1024 samples at 48 kHz) after each fader and after the master
// gain, on a -60..0 dBFS scale; a sample at or over full scale lights the clip indicator until it is clicked.
const METER_FLOOR_DB = -60;
function makeMeter(ctx, node) {
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  node.connect(analyser);
  return { analyser, data: new Float32Array(analyser.fftSize), peak: 0 };
}

function readMeter(meter, el) {
  let peak = 0;
  if (mixer.playing) {
    meter.analyser.getFloatTimeDomainData(meter.data);
    for (const v of meter.data) { const a = Math.abs(v); if (a > peak) peak = a; }
  }
  meter.peak = peak;
  const db = peak > 0 ? 20 * Math.log10(peak) : -Infinity;
  const fill = Math.max(0, Math.min(1, (db - METER_FLOOR_DB) / -METER_FLOOR_DB));
  $(".level", el).style.width = `${(fill * 100).toFixed(1)}%`;
  el.dataset.peak = peak.toFixed(4);
  if (peak >= 1) el.classList.add("clipped");
}

function drawMeters() {
  for (const s of mixer.strips) readMeter(s.meter, $(".meter", s.el));
  if (mixer.masterMeter) readMeter(mixer.masterMeter, $("#master-meter"));
}

function audible(strip) {
  const anySolo = mixer.strips.some((s) => s.solo);
  return !strip.mute && (!anySolo || strip.solo);
}

// While playing, parameters glide over ~5 ms (no zipper noise); while paused they are set at once, because
// Chromium does not advance automation on nodes that have no active input.
function setParam(param, value) {
  const t = mixer.ctx.currentTime;
  param.cancelScheduledValues(0);
  if (mixer.playing) { param.setValueAtTime(param.value, t); param.setTargetAtTime(value, t, 0.005); } else param.value = value;
}

function applyStrip(strip) {
  setParam(strip.fader.gain, audible(strip) ? dbToGain(strip.gainDb) : 0);
  setParam(strip.panner.pan, strip.pan);
  strip.filters[0].gain.value = strip.eq.low; strip.filters[1].gain.value = strip.eq.mid; strip.filters[2].gain.value = strip.eq.high;
  const el = strip.el;
  $(".gain", el).value = strip.gainDb; $(".gain-out", el).textContent = strip.gainDb <= -60 ? "-∞ dB" : `${strip.gainDb.toFixed(1)} dB`;
  $(".pan", el).value = strip.pan; $(".pan-out", el).textContent = strip.pan === 0 ? "C" : `${strip.pan < 0 ? "L" : "R"}${Math.round(Math.abs(strip.pan) * 100)}`;
  $(".eq-low", el).value = strip.eq.low; $(".eq-mid", el).value = strip.eq.mid; $(".eq-high", el).value = strip.eq.high;
  $(".mute", el).setAttribute("aria-pressed", String(strip.mute));
  $(".solo", el).setAttribute("aria-pressed", String(strip.solo));
  el.classList.toggle("silent", !audible(strip));
}

function applyAll() { for (const s of mixer.strips) applyStrip(s); changed(); }

function makeStrip(name, buffer, peaks) {
  const el = $("#strip-template").content.firstElementChild.cloneNode(true);
  const strip = { name, buffer, peaks, el, gainDb: 0, pan: 0, mute: false, solo: false, eq: { low: 0, mid: 0, high: 0 } };
  el.dataset.stem = name;
  $(".name", el).textContent = name;
  $(".swatch", el).style.background = COLORS[name] || "#aaa";
  buildStripGraph(strip);
  $(".gain", el).oninput = (e) => { strip.gainDb = Number(e.target.value); applyStrip(strip); changed(); };
  $(".pan", el).oninput = (e) => { strip.pan = Number(e.target.value); applyStrip(strip); changed(); };
  for (const band of ["low", "mid", "high"]) $(`.eq-${band}`, el).oninput = (e) => { strip.eq[band] = Number(e.target.value); applyStrip(strip); changed(); };
  $(".mute", el).onclick = () => { strip.mute = !strip.mute; applyAll(); };
  $(".version", el).onclick = () => switchVersion(strip);
  $(".solo", el).onclick = () => { strip.solo = !strip.solo; applyAll(); };
  el.addEventListener("focusin", () => { mixer.focused = strip; });
  $(".meter", el).onclick = (e) => e.currentTarget.classList.remove("clipped");
  stemLink(strip);
  setupWaveform(strip);
  return strip;
}

// One stem at a time, in the format chosen for exports (wav, flac or mp3), named after the song and the stem.
function stemLink(strip) {
  const fmt = $("#export-format").value;
  const a = $(".download", strip.el);
  a.href = `/api/songs/${mixer.songId}/stems/${encodeURIComponent(strip.name)}?format=${fmt}`;
  a.download = `${(mixer.song && mixer.song.title) || "song"} - ${strip.name}.${fmt}`;
  a.setAttribute("aria-label", `Download the ${strip.name} stem as ${fmt}`);
}

// -- waveform: click to seek, drag to select the loop region -----------------------------------------------------
function setupWaveform(strip) {
  const canvas = $("canvas", strip.el);
  let down = null;
  const timeAt = (e) => { const r = canvas.getBoundingClientRect(); return viewTime((e.clientX - r.left) / r.width); };
  canvas.addEventListener("pointerdown", (e) => { down = timeAt(e); canvas.setPointerCapture(e.pointerId); });
  canvas.addEventListener("pointermove", (e) => {
    if (down === null) return;
    const t = timeAt(e);
    if (Math.abs(t - down) > viewSpan() / 200) {
      // on the beat grid when the song is analysed: a dragged loop starts and ends on beats
      const a = snapToBeat(Math.min(down, t)), b = snapToBeat(Math.max(down, t));
      mixer.loop.start = a; mixer.loop.end = b > a ? b : Math.max(down, t);
      showLoop();
    }
  });
  canvas.addEventListener("pointerup", (e) => {
    const t = timeAt(e);
    if (down !== null && Math.abs(t - down) <= viewSpan() / 200) seek(t);
    else if (down !== null) { mixer.loop.on = true; $("#loop").checked = true; showLoop(); if (mixer.playing) seek(mixer.loop.start); }
    down = null;
  });
}

function drawWave(strip) {
  const canvas = $("canvas", strip.el);
  const w = (canvas.width = Math.max(100, Math.floor(canvas.clientWidth * devicePixelRatio)));
  const h = (canvas.height = Math.floor(64 * devicePixelRatio));
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, h);
  g.fillStyle = COLORS[strip.name] || "#aaa";
  if (mixer.view.zoom === 1) { // the server's peaks cover the whole song
    const { min, max } = strip.peaks;
    const n = min.length;
    for (let x = 0; x < w; x++) {
      const i = Math.floor((x / w) * n);
      const y0 = ((1 - Math.min(1, max[i])) * h) / 2, y1 = ((1 - Math.max(-1, min[i])) * h) / 2;
      g.fillRect(x, y0, 1, Math.max(1, y1 - y0));
    }
  } else {
    paintColumns(g, w, h, columnPeaks([strip.buffer.getChannelData(0)], [1], strip.buffer.sampleRate, w));
  }
  strip.image = g.getImageData(0, 0, w, h);
}

// -- zoom, time ruler with bar numbers and loop handles, master waveform ----------------------------------------
// The waveforms, the ruler and the master show the view: `duration / zoom` seconds from `view.start`; zooming
// centres the view on the playhead and, while playing, the view turns the page when the playhead leaves it.
const viewSpan = () => (mixer.duration || 1) / mixer.view.zoom;
const viewTime = (frac) => mixer.view.start + Math.min(1, Math.max(0, frac)) * viewSpan();
const viewX = (t, w) => ((t - mixer.view.start) / viewSpan()) * w;

function setView(zoom, start) {
  zoom = Math.min(32, Math.max(1, Math.round(zoom)));
  const span = (mixer.duration || 1) / zoom;
  start = Math.min(Math.max(0, start), Math.max(0, mixer.duration - span));
  if (zoom === mixer.view.zoom && Math.abs(start - mixer.view.start) < 1e-9) return;
  mixer.view = { zoom, start: zoom === 1 ? 0 : start };
  $("#zoom").value = String(zoom);
  $("#zoom-out").textContent = `${zoom}×`;
  for (const s of mixer.strips) s.image = null;
  mixer.masterImage = null;
  mixer.dirty = true;
}

function zoomTo(zoom) { setView(zoom, position() - (mixer.duration || 1) / Math.max(1, zoom) / 2); }

function followPlayhead(pos) {
  const { zoom, start } = mixer.view;
  if (zoom > 1 && (pos < start || pos > start + viewSpan())) setView(zoom, pos - 0.05 * viewSpan());
}

// min/max per pixel column of sum_k gains[k] * channels[k] over the view, reading at most 256 samples a column
function columnPeaks(channels, gains, rate, w) {
  const min = new Float32Array(w), max = new Float32Array(w);
  const n = channels.length ? channels[0].length : 0;
  for (let x = 0; x < w; x++) {
    const i0 = Math.floor(viewTime(x / w) * rate), i1 = Math.min(n, Math.max(i0 + 1, Math.floor(viewTime((x + 1) / w) * rate)));
    const step = Math.max(1, Math.floor((i1 - i0) / 256));
    let lo = 0, hi = 0;
    for (let i = i0; i < i1; i += step) {
      let v = 0;
      for (let k = 0; k < channels.length; k++) v += gains[k] * channels[k][i];
      if (v < lo) lo = v; if (v > hi) hi = v;
    }
    min[x] = lo; max[x] = hi;
  }
  return { min, max };
}

function paintColumns(g, w, h, { min, max }) {
  for (let x = 0; x < w; x++) {
    const y0 = ((1 - Math.min(1, max[x])) * h) / 2, y1 = ((1 - Math.max(-1, min[x])) * h) / 2;
    g.fillRect(x, y0, 1, Math.max(1, y1 - y0));
  }
}

// The master waveform: the audible stems at their fader gains times the master gain (EQ and pan left out),
// redrawn when one of those changes.
function drawMasterWave() {
  const canvas = $("#master-wave");
  if (!canvas || !mixer.strips.length) return;
  const w = (canvas.width = Math.max(100, Math.floor(canvas.clientWidth * devicePixelRatio)));
  const h = (canvas.height = Math.floor(64 * devicePixelRatio));
  const master = dbToGain(Number($("#master-gain").value));
  const parts = mixer.strips.filter(audible);
  const key = JSON.stringify([w, mixer.view, master, parts.map((s) => [s.name, s.gainDb, !!s.useAlt])]);
  const g = canvas.getContext("2d");
  if (!mixer.masterImage || mixer.masterKey !== key) {
    g.clearRect(0, 0, w, h);
    g.fillStyle = "#e8e8e8";
    paintColumns(g, w, h, columnPeaks(parts.map((s) => playing(s).getChannelData(0)), parts.map((s) => master * dbToGain(s.gainDb)),
      mixer.strips[0].buffer.sampleRate, w));
    mixer.masterImage = g.getImageData(0, 0, w, h);
    mixer.masterKey = key;
  }
  g.putImageData(mixer.masterImage, 0, 0);
  g.fillStyle = "#fff";
  g.fillRect(Math.floor(viewX(position(), w)), 0, Math.max(1, devicePixelRatio), h);
}

// The ruler: bar numbers on the analysed downbeats (seconds without an analysis), beat ticks, the loop with a
// handle at each end, and the playhead.
const HANDLE_PX = 5;
function drawRuler() {
  const canvas = $("#ruler");
  if (!canvas) return;
  const w = (canvas.width = Math.max(100, Math.floor(canvas.clientWidth * devicePixelRatio)));
  const h = (canvas.height = Math.floor(28 * devicePixelRatio));
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, h);
  const a = mixer.analysis, span = viewSpan(), end = mixer.view.start + span;
  g.fillStyle = "#6b7280";
  const labels = [];
  if (a && a.downbeats.length) {
    for (const t of a.beats) if (t >= mixer.view.start && t <= end) g.fillRect(Math.floor(viewX(t, w)), h * 0.7, 1, h * 0.3);
    const minGap = 28 * devicePixelRatio; // px between bar numbers
    let lastX = -Infinity;
    a.downbeats.forEach((t, i) => {
      if (t < mixer.view.start || t > end) return;
      const x = viewX(t, w);
      g.fillStyle = "#9aa3b2"; g.fillRect(Math.floor(x), h * 0.35, 1, h * 0.65);
      if (x - lastX >= minGap) {
        g.font = `${11 * devicePixelRatio}px sans-serif`; g.fillStyle = "#d0d4dc";
        g.fillText(String(i + 1), x + 3 * devicePixelRatio, h * 0.45);
        labels.push({ bar: i + 1, t, x: x / devicePixelRatio });
        lastX = x;
      }
    });
  } else {
    const stepS = [0.5, 1, 2, 5, 10, 15, 30, 60].find((st) => (st / span) * w >= 40 * devicePixelRatio) || 60;
    g.font = `${11 * devicePixelRatio}px sans-serif`;
    for (let t = Math.ceil(mixer.view.start / stepS) * stepS; t <= end; t += stepS) {
      const x = viewX(t, w);
      g.fillStyle = "#9aa3b2"; g.fillRect(Math.floor(x), h * 0.5, 1, h * 0.5);
      g.fillStyle = "#d0d4dc"; g.fillText(fmtTime(t), x + 3 * devicePixelRatio, h * 0.45);
    }
  }
  mixer.rulerLabels = labels;
  const { start, end: loopEnd, on } = mixer.loop;
  if (loopEnd > start) {
    const x0 = viewX(start, w), x1 = viewX(loopEnd, w);
    g.fillStyle = on ? "rgba(79,179,255,.25)" : "rgba(255,255,255,.08)";
    g.fillRect(x0, 0, x1 - x0, h);
    g.fillStyle = on ? "#4fb3ff" : "#9aa3b2";
    const hw = HANDLE_PX * devicePixelRatio;
    g.fillRect(x0 - hw / 2, 0, hw, h); g.fillRect(x1 - hw / 2, 0, hw, h);
  }
  g.fillStyle = "#fff";
  g.fillRect(Math.floor(viewX(position(), w)), 0, Math.max(1, devicePixelRatio), h);
}

// Click the ruler to seek; press on a loop handle (within 8 px) and drag to move that end, snapped to beats.
function setupRuler() {
  const canvas = $("#ruler");
  let drag = null;
  const frac = (e) => { const r = canvas.getBoundingClientRect(); return [(e.clientX - r.left) / r.width, r.width]; };
  canvas.addEventListener("pointerdown", (e) => {
    const [f, width] = frac(e);
    const near = (t) => Math.abs(viewX(t, width) - f * width) <= 8;
    const { start, end } = mixer.loop;
    drag = end > start && near(end) ? "end" : end > start && near(start) ? "start" : "seek";
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (drag !== "start" && drag !== "end") return;
    const t = snapToBeat(viewTime(frac(e)[0]));
    if (drag === "start" && t < mixer.loop.end) mixer.loop.start = t;
    if (drag === "end" && t > mixer.loop.start) mixer.loop.end = t;
    showLoop();
  });
  canvas.addEventListener("pointerup", (e) => {
    if (drag === "seek") seek(viewTime(frac(e)[0]));
    else if (drag) { if (mixer.playing && mixer.loop.on) startAt(position()); changed(); }
    drag = null;
  });
}

function drawOverlays() {
  const pos = position();
  if (mixer.playing) followPlayhead(pos);
  for (const s of mixer.strips) {
    const canvas = $("canvas", s.el);
    const g = canvas.getContext("2d");
    if (!s.image || s.image.width !== canvas.width) drawWave(s);
    g.putImageData(s.image, 0, 0);
    const w = canvas.width, h = canvas.height;
    if (mixer.loop.end > mixer.loop.start) {
      g.fillStyle = mixer.loop.on ? "rgba(79,179,255,.18)" : "rgba(255,255,255,.07)";
      g.fillRect(viewX(mixer.loop.start, w), 0, viewX(mixer.loop.end, w) - viewX(mixer.loop.start, w), h);
    }
    g.fillStyle = "#fff";
    g.fillRect(Math.floor(viewX(pos, w)), 0, Math.max(1, devicePixelRatio), h);
  }
  drawRuler();
  drawMasterWave();
  $("#position").textContent = fmtTime(pos);
}

// Redraw only while playing or after a change: a paused mixer costs no frames.
function tick() {
  if (mixer.playing || mixer.dirty) { mixer.dirty = false; mixer.draws += 1; drawOverlays(); drawMeters(); }
  scheduleMetronome();
  mixer.raf = requestAnimationFrame(tick);
}

// Something the user sees or would lose changed: redraw, and autosave the working state soon.
function changed() {
  mixer.dirty = true;
  if (!mixer.songId || mixer.restoring) return;
  clearTimeout(mixer.autosaveTimer);
  mixer.autosaveTimer = setTimeout(autosave, 300);
  clearTimeout(mixer.historyTimer);
  mixer.historyTimer = setTimeout(recordHistory, 300);
}

// -- undo/redo of mixer changes: a snapshot of the mix document once a change has settled for 300 ms (a fader
// drag is one step, not a hundred); at most HISTORY_MAX steps back.
const HISTORY_MAX = 100;
function recordHistory() {
  clearTimeout(mixer.historyTimer);
  if (!mixer.songId || !mixer.strips.length) return;
  const doc = JSON.stringify(mixDocument());
  if (doc === mixer.lastDoc) return;
  if (mixer.lastDoc !== null) { mixer.history.push(mixer.lastDoc); if (mixer.history.length > HISTORY_MAX) mixer.history.shift(); }
  mixer.future = [];
  mixer.lastDoc = doc;
  updateUndoButtons();
}

function resetHistory() {
  clearTimeout(mixer.historyTimer);
  mixer.history = []; mixer.future = [];
  mixer.lastDoc = mixer.strips.length ? JSON.stringify(mixDocument()) : null;
  updateUndoButtons();
}

function stepHistory(back) {
  recordHistory(); // a change still settling counts as a step first
  const from = back ? mixer.history : mixer.future;
  if (!from.length) return;
  (back ? mixer.future : mixer.history).push(mixer.lastDoc);
  mixer.lastDoc = from.pop();
  mixer.restoring = true;
  applyDocument(JSON.parse(mixer.lastDoc));
  mixer.restoring = false;
  clearTimeout(mixer.autosaveTimer);
  mixer.autosaveTimer = setTimeout(autosave, 300);
  updateUndoButtons();
}

function updateUndoButtons() {
  $("#undo").disabled = !mixer.history.length;
  $("#redo").disabled = !mixer.future.length;
}

// -- transport ---------------------------------------------------------------------------------------------------
const looping = () => mixer.loop.on && mixer.loop.end > mixer.loop.start;

// Where playback starts for a requested offset. A looping AudioBufferSource started past loopEnd plays from
// loopStart (Web Audio spec, "playhead position" of AudioBufferSourceNode), so the transport does the same and
// the clock never counts on past the region while the loop is what is heard.
function effectiveOffset(offset) {
  return looping() && offset >= mixer.loop.end ? mixer.loop.start : offset;
}

function position() {
  if (!mixer.playing) return mixer.startOffset;
  let p = mixer.startOffset + Math.max(0, mixer.ctx.currentTime - mixer.startCtxTime) * mixer.speed;
  const { start, end } = mixer.loop;
  if (looping() && p >= end) p = start + ((p - start) % (end - start));
  return Math.min(p, mixer.duration);
}

function stopSources() {
  // Detach onended first: a stopped source fires it asynchronously, which must not end the *new* playback.
  for (const src of mixer.sources) { src.onended = null; try { src.stop(); } catch { /* already stopped */ } src.disconnect(); }
  mixer.sources = [];
}

function startAt(offset, countIn = false) {
  const ctx = audioContext();
  stopSources();
  offset = effectiveOffset(offset);
  let when = ctx.currentTime + 0.05; // one start time for every stem: sample-synchronous
  const a = mixer.analysis;
  if (countIn && a && $("#count-in").checked) {
    // one bar of clicks at the song's tempo before the song starts, the first accented
    const beat = 60 / a.tempo_bpm / mixer.speed; // at the playing speed
    for (let k = 0; k < a.beats_per_bar; k++) click(when + k * beat, k === 0);
    when += a.beats_per_bar * beat;
  }
  const { on, start, end } = mixer.loop;
  for (const s of mixer.strips) {
    const src = ctx.createBufferSource();
    src.buffer = playing(s);
    src.playbackRate.value = mixer.speed;
    if (on && end > start) { src.loop = true; src.loopStart = start; src.loopEnd = end; }
    src.connect(s.input);
    src.start(when, offset);
    mixer.sources.push(src);
  }
  if (mixer.original) { // the original song, started with the stems: A/B switches at the same position
    const src = ctx.createBufferSource();
    src.buffer = mixer.original.buffer;
    src.playbackRate.value = mixer.speed;
    if (on && end > start) { src.loop = true; src.loopStart = start; src.loopEnd = end; }
    src.connect(mixer.original.gain);
    src.start(when, offset);
    mixer.sources.push(src);
  }
  const first = mixer.sources[0];
  first.onended = () => {
    if (mixer.sources[0] === first && mixer.playing && !mixer.loop.on) { mixer.playing = false; mixer.startOffset = 0; updatePlayButton(); }
  };
  mixer.startCtxTime = when;
  mixer.clickedUntil = when - 0.01;
  mixer.startOffset = offset;
  mixer.playing = true;
  updatePlayButton();
  changed();
}

async function togglePlay() {
  const ctx = audioContext();
  if (ctx.state === "suspended") await ctx.resume();
  if (mixer.playing) { mixer.startOffset = position(); mixer.playing = false; stopSources(); updatePlayButton(); changed(); }
  else startAt(mixer.startOffset >= mixer.duration ? 0 : mixer.startOffset, true);
}

// -- A/B: the original song against the current mix, at the same position. The original is fetched and decoded
// on the first press (it is as large as one stem), then plays in sync with the stems at all times; the switch only
// moves two gains (5 ms glides), so nothing restarts and the position is kept.
async function toggleAB() {
  const button = $("#ab");
  if (!mixer.original) {
    button.disabled = true;
    setStatus("loading the original…");
    try {
      const data = await (await api(`/api/songs/${mixer.songId}/original`)).arrayBuffer();
      const buffer = await mixer.ctx.decodeAudioData(data);
      const gain = mixer.ctx.createGain();
      gain.gain.value = 0;
      gain.connect(mixer.pitchIn);
      mixer.original = { buffer, gain };
      if (mixer.playing) startAt(position());
      setStatus("");
    } finally { button.disabled = false; }
  }
  mixer.ab = !mixer.ab;
  setParam(mixer.mixBus.gain, mixer.ab ? 0 : 1);
  setParam(mixer.original.gain.gain, mixer.ab ? 1 : 0);
  button.setAttribute("aria-pressed", String(mixer.ab));
  button.textContent = mixer.ab ? "A/B: original" : "A/B: mix";
}

// -- speed and transpose ------------------------------------------------------------------------------------------
// SoundTouch (vendor/soundtouchjs, LGPL-2.1) in pitch-only mode: tempo 1, pitch = 2^(semitones/12) / speed.
const PITCH_BLOCK = 2048; // ScriptProcessor block: 46 ms at 44.1 kHz, so a change is heard well within a second

function pitchFactor(speed = mixer.speed, semitones = mixer.semitones) { return Math.pow(2, semitones / 12) / speed; }

// Push one stereo block through SoundTouch and take the same number of frames out (zeros until it has output).
// Shared by the live node and renderTimePitch, so the tests measure the code that plays.
function pitchBlock(st, inL, inR, outL, outR) {
  const n = inL.length;
  const inter = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) { inter[2 * i] = inL[i]; inter[2 * i + 1] = inR[i]; }
  st.inputBuffer.putSamples(inter, 0, n);
  st.process();
  const have = Math.min(n, st.outputBuffer.frameCount);
  const out = new Float32Array(2 * n);
  if (have > 0) st.outputBuffer.receiveSamples(out, have);
  const lead = n - have; // an underrun (only while SoundTouch fills up) is padded at the front
  outL.fill(0, 0, lead); outR.fill(0, 0, lead);
  for (let i = 0; i < have; i++) { outL[lead + i] = out[2 * i]; outR[lead + i] = out[2 * i + 1]; }
  return lead;
}

// Connect the mix (pitchIn) to the master directly at 100 % and 0 st (bit-exact, no latency), else through the
// SoundTouch node; a new factor is set on the running shifter, so a change is heard on its next block.
function routePitch() {
  const ctx = mixer.ctx;
  if (!ctx || !mixer.pitchIn) return;
  const factor = pitchFactor();
  mixer.pitchIn.disconnect();
  if (Math.abs(factor - 1) < 1e-9) { mixer.pitchIn.connect(mixer.master); return; }
  if (!mixer.pitchNode) {
    const node = ctx.createScriptProcessor(PITCH_BLOCK, 2, 2);
    const st = new SoundTouch();
    node.onaudioprocess = (e) => {
      const i = e.inputBuffer, o = e.outputBuffer;
      pitchBlock(st, i.getChannelData(0), i.getChannelData(i.numberOfChannels > 1 ? 1 : 0), o.getChannelData(0), o.getChannelData(1));
    };
    node.connect(mixer.master);
    mixer.pitchNode = { node, st };
  }
  mixer.pitchNode.st.pitch = factor;
  mixer.pitchIn.connect(mixer.pitchNode.node);
}

// Speed in [0.5, 1.5] and transpose in whole semitones [-12, 12] (the mix document's ranges). While playing, the
// sources restart at the new rate from the current position (the transport clock then runs at the new speed).
function setTimePitch(speed, semitones) {
  speed = Math.min(1.5, Math.max(0.5, Number.isFinite(speed) ? speed : 1));
  semitones = Math.min(12, Math.max(-12, Math.round(Number.isFinite(semitones) ? semitones : 0)));
  const pos = mixer.playing ? position() : null;
  const changedSpeed = speed !== mixer.speed;
  mixer.speed = speed; mixer.semitones = semitones;
  $("#speed").value = String(Math.round(speed * 100));
  $("#speed-out").textContent = `${Math.round(speed * 100)} %`;
  $("#transpose").value = String(semitones);
  $("#transpose-out").textContent = `${semitones > 0 ? "+" : semitones < 0 ? "−" : "±"}${Math.abs(semitones)} st`;
  routePitch();
  if (pos !== null && changedSpeed) startAt(pos);
  showTransposedKey();
}

function showTransposedKey() {
  const el = $("#analysis-key");
  if (!el) return;
  const a = mixer.analysis;
  if (!a || !mixer.semitones) { el.textContent = ""; return; }
  const names = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
  el.textContent = ` → ${names[(a.key_tonic + mixer.semitones + 120) % 12]} ${a.key_mode}`;
}

// What the page plays at `speed`/`semitones` for the given channels (Float32 arrays at `rate`): an
// OfflineAudioContext plays them at playbackRate = speed (length / speed), then the same SoundTouch pitch shifter
// as live playback. The shifter's start-up delay is taken off by feeding silence after the end.
async function renderTimePitch(channels, rate, speed = mixer.speed, semitones = mixer.semitones) {
  const inLength = channels[0].length;
  const length = Math.round(inLength / speed);
  const off = new OfflineAudioContext(2, length, rate);
  const buf = off.createBuffer(channels.length, inLength, rate);
  channels.forEach((c, i) => buf.copyToChannel(c instanceof Float32Array ? c : Float32Array.from(c), i));
  const src = off.createBufferSource();
  src.buffer = buf; src.playbackRate.value = speed;
  src.connect(off.destination); src.start(0);
  const played = await off.startRendering();
  const L = played.getChannelData(0), R = played.getChannelData(1);
  const factor = pitchFactor(speed, semitones);
  if (Math.abs(factor - 1) < 1e-9) return [L, R];
  const st = new SoundTouch();
  st.pitch = factor;
  // the zeros pitchBlock pads while SoundTouch fills up are its delay; feed silence until that much more is out
  let delay = 0;
  const outL = [], outR = [];
  for (let at = 0; at < length + delay + PITCH_BLOCK; at += PITCH_BLOCK) {
    const inL = new Float32Array(PITCH_BLOCK), inR = new Float32Array(PITCH_BLOCK);
    if (at < length) { inL.set(L.subarray(at, at + PITCH_BLOCK)); inR.set(R.subarray(at, at + PITCH_BLOCK)); }
    const oL = new Float32Array(PITCH_BLOCK), oR = new Float32Array(PITCH_BLOCK);
    delay += pitchBlock(st, inL, inR, oL, oR);
    outL.push(oL); outR.push(oR);
  }
  const join = (parts) => { const a = new Float32Array(parts.length * PITCH_BLOCK); parts.forEach((p, k) => a.set(p, k * PITCH_BLOCK)); return a; };
  const start = delay;
  return [join(outL).slice(start, start + length), join(outR).slice(start, start + length)];
}

// -- compare models: another finished separation of the same song (another model's run) is loaded next to the
// current one; each strip switches between the two buffers (the sources restart at the same position, so the
// switch is heard at once and the stems stay in sync), with inspect's bleed figures of both side by side.
const playing = (s) => (s.useAlt && s.alt ? s.alt : s.buffer);

async function refreshCompare() {
  const select = $("#compare");
  select.innerHTML = '<option value="">Compare…</option>';
  const { separations } = await (await api(`/api/songs/${mixer.songId}/separations`)).json();
  const current = mixer.song && mixer.song.stems_job;
  for (const sep of separations) {
    if (sep.job_id === current) continue;
    const o = document.createElement("option");
    o.value = sep.job_id;
    o.textContent = `${sep.model} (${new Date(sep.finished * 1000).toLocaleString()})`;
    select.append(o);
  }
  select.disabled = select.options.length < 2;
}

async function loadCompare(jobId) {
  const songId = mixer.songId, current = mixer.song.stems_job;
  setStatus("loading the other separation…");
  const { separations } = await (await api(`/api/songs/${songId}/separations`)).json();
  const other = separations.find((x) => x.job_id === jobId), mine = separations.find((x) => x.job_id === current);
  if (!other || !mine) throw new Error("that separation is no longer there");
  const shared = mixer.strips.filter((s) => other.stems.includes(s.name));
  const buffers = await Promise.all(shared.map(async (s) => {
    const data = await (await api(`/api/songs/${songId}/stems/${encodeURIComponent(s.name)}?format=flac&job=${jobId}`)).arrayBuffer();
    return mixer.ctx.decodeAudioData(data);
  }));
  if (mixer.songId !== songId) return;
  for (const s of mixer.strips) { s.alt = null; s.useAlt = false; }
  shared.forEach((s, i) => { s.alt = buffers[i]; });
  mixer.compare = { jobId, models: [mine.model, other.model], bleed: [null, null] };
  for (const s of mixer.strips) showVersion(s);
  if (mixer.playing) startAt(position());
  renderCompareTable();
  setStatus("");
  const [a, b] = await Promise.all([current, jobId].map(async (j) => (await api(`/api/songs/${songId}/bleed?job=${j}`)).json()));
  if (!mixer.compare || mixer.compare.jobId !== jobId) return;
  mixer.compare.bleed = [a.per_stem, b.per_stem];
  renderCompareTable();
}

function showVersion(strip) {
  const b = $(".version", strip.el);
  const on = !!(strip.alt && mixer.compare);
  b.classList.toggle("hidden", !on);
  if (!on) return;
  b.setAttribute("aria-pressed", String(!!strip.useAlt));
  b.textContent = strip.useAlt ? "B" : "A";
  b.setAttribute("aria-label", `${strip.name}: playing ${mixer.compare.models[strip.useAlt ? 1 : 0]}; switch model`);
}

function switchVersion(strip) {
  if (!strip.alt) return;
  strip.useAlt = !strip.useAlt;
  showVersion(strip);
  if (mixer.playing) startAt(position());
  renderCompareTable();
}

function renderCompareTable() {
  const table = $("#compare-table");
  const c = mixer.compare;
  table.classList.toggle("hidden", !c);
  table.innerHTML = "";
  if (!c) return;
  const row = (cells, tag = "td") => {
    const tr = document.createElement("tr");
    for (const text of cells) { const cell = document.createElement(tag); cell.textContent = text; tr.append(cell); }
    table.append(tr);
    return tr;
  };
  row(["bleed (inspect)", `A: ${c.models[0]}`, `B: ${c.models[1]}`, "playing"], "th");
  const fmt = (v) => (v === null || v === undefined ? "…" : v.toFixed(3));
  for (const s of mixer.strips.filter((x) => x.alt)) {
    row([s.name, fmt(c.bleed[0] && c.bleed[0][s.name]), fmt(c.bleed[1] && c.bleed[1][s.name]), s.useAlt ? "B" : "A"]).dataset.stem = s.name;
  }
}

// -- save loop as sample: the mix over the loop, cut on the server into its sample library (stemwright.samples)
async function saveLoopSample() {
  const { start, end } = mixer.loop;
  if (!(end > start)) return;
  const button = $("#save-sample");
  button.disabled = true;
  try {
    const r = await api(`/api/songs/${mixer.songId}/samples`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ document: mixDocument(), start, end }) });
    const entry = await r.json();
    const link = $("#sample-link");
    link.href = entry.href;
    link.download = entry.path.split("/").pop();
    link.classList.remove("hidden");
    setStatus(`saved ${entry.path.split("/").pop()} (${entry.duration_s.toFixed(2)} s) in the sample library`);
  } finally { button.disabled = false; }
}

// -- metronome: a short blip into the master (so the meters and exports of the page hear it), 1.5 kHz on a
// downbeat and 1 kHz on other beats. While playing, tick() schedules the clicks of the next 150 ms of song time.
function click(at, accent) {
  const ctx = mixer.ctx;
  const osc = ctx.createOscillator();
  const env = ctx.createGain();
  osc.frequency.value = accent ? 1500 : 1000;
  env.gain.setValueAtTime(0, at);
  env.gain.linearRampToValueAtTime(0.5, at + 0.002);
  env.gain.exponentialRampToValueAtTime(0.001, at + 0.05);
  osc.connect(env); env.connect(mixer.master);
  osc.start(at); osc.stop(at + 0.06);
  mixer.clicks.push({ at, accent });
  if (mixer.clicks.length > 64) mixer.clicks.shift();
}

function scheduleMetronome() {
  const a = mixer.analysis;
  if (!mixer.playing || !a || !$("#metronome").checked) return;
  const now = Math.max(mixer.ctx.currentTime, mixer.startCtxTime); // the context time of position()
  const pos = position();
  const speed = mixer.speed;
  const ahead = 0.15 * speed; // 150 ms of context time, in song time
  // [song time from, song time to, context time of "from"]; a loop's end continues at its start
  const spans = [[pos, pos + ahead, now]];
  if (looping() && pos + ahead > mixer.loop.end) {
    spans[0][1] = mixer.loop.end;
    spans.push([mixer.loop.start, mixer.loop.start + (pos + ahead - mixer.loop.end), now + (mixer.loop.end - pos) / speed]);
  }
  const downs = new Set(a.downbeats.map((t) => t.toFixed(3)));
  for (const [from, to, base] of spans) {
    for (const t of a.beats) {
      if (t < from - 1e-3 || t >= to) continue;
      const at = base + (t - from) / speed;
      if (at <= mixer.clickedUntil + 1e-3) continue; // already scheduled on an earlier frame
      click(at, downs.has(t.toFixed(3)));
      mixer.clickedUntil = at;
    }
  }
}

function seek(t) {
  t = Math.max(0, Math.min(mixer.duration, t));
  if (mixer.playing) startAt(t); else { mixer.startOffset = effectiveOffset(t); changed(); }
}

function updatePlayButton() {
  const b = $("#play");
  b.textContent = mixer.playing ? "❚❚" : "▶";
  b.setAttribute("aria-label", mixer.playing ? "Pause" : "Play");
}

function showLoop() {
  mixer.dirty = true;
  const { start, end } = mixer.loop;
  $("#save-sample").disabled = !(end > start);
  $("#loop-range").textContent = end > start ? `${fmtTime(start)}–${fmtTime(end)}` : "drag a waveform to loop";
}

// -- mix document ------------------------------------------------------------------------------------------------
function mixDocument() {
  const channels = mixer.strips.map((s) => {
    const effects = [];
    if (s.eq.low) effects.push({ type: "lowshelf", cutoff_hz: EQ.low.hz, gain_db: s.eq.low, q: 0.7071 });
    if (s.eq.mid) effects.push({ type: "peak", cutoff_hz: EQ.mid.hz, gain_db: s.eq.mid, q: EQ.mid.q });
    if (s.eq.high) effects.push({ type: "highshelf", cutoff_hz: EQ.high.hz, gain_db: s.eq.high, q: 0.7071 });
    return { stem: s.name, gain_db: s.gainDb <= -60 ? null : s.gainDb, mute: s.mute, solo: s.solo, pan: s.pan, invert: false, offset_s: 0, effects };
  });
  const masterDb = Number($("#master-gain").value);
  const doc = { version: 1, channels, master: { gain_db: masterDb <= -60 ? null : masterDb, effects: [] }, loudness_lufs: null };
  if (mixer.speed !== 1 || mixer.semitones !== 0) { // version 2 only when needed (mixer/document.py)
    doc.version = 2;
    doc.time_pitch = { speed: mixer.speed, semitones: mixer.semitones };
  }
  return doc;
}

function applyDocument(doc) {
  for (const ch of doc.channels || []) {
    const s = mixer.strips.find((x) => x.name === ch.stem);
    if (!s) continue;
    s.gainDb = ch.gain_db === null || ch.gain_db === "-inf" ? -60 : Number(ch.gain_db ?? 0);
    s.pan = Number(ch.pan ?? 0); s.mute = !!ch.mute; s.solo = !!ch.solo;
    s.eq = { low: 0, mid: 0, high: 0 };
    for (const fx of ch.effects || []) {
      if (fx.type === "lowshelf") s.eq.low = fx.gain_db; else if (fx.type === "peak") s.eq.mid = fx.gain_db; else if (fx.type === "highshelf") s.eq.high = fx.gain_db;
    }
  }
  const m = doc.master && doc.master.gain_db;
  setMasterGain(m === null || m === undefined || m === "-inf" ? (m === undefined ? 0 : -60) : Number(m));
  const tp = doc.time_pitch || {};
  setTimePitch(Number(tp.speed ?? 1), Number(tp.semitones ?? 0));
  applyAll();
}

function setMasterGain(db) {
  $("#master-gain").value = db;
  $("#master-gain-out").textContent = db <= -60 ? "-∞ dB" : `${db.toFixed(1)} dB`;
  if (mixer.master) setParam(mixer.master.gain, dbToGain(db));
}

function applyPreset(name) {
  const vocal = mixer.strips.find((s) => s.name === "vocals");
  for (const s of mixer.strips) { s.gainDb = 0; s.mute = false; s.solo = false; s.pan = 0; }
  if (name === "reset") { for (const s of mixer.strips) s.eq = { low: 0, mid: 0, high: 0 }; setMasterGain(0); }
  if (name === "instrumental" && vocal) vocal.mute = true;
  if (name === "acapella" && vocal) vocal.solo = true;
  if (name === "karaoke" && vocal) vocal.gainDb = -18; // a low guide vocal over the instrumental
  applyAll();
}

// -- saved mixes (named, on the server) and the working state (autosaved in this browser) ------------------------
// Saving under an existing name replaces that mix; a new name makes a new one.
async function saveMix() {
  const name = $("#mix-name").value.trim() || "studio mix";
  $("#mix-name").value = name;
  const res = await api(`/api/songs/${mixer.songId}/mixes`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, document: mixDocument() }),
  });
  const saved = await res.json();
  mixer.mixId = saved.id;
  await refreshMixList();
  setStatus(`mix saved: “${saved.name}” (${new Date(saved.updated * 1000).toLocaleTimeString()})`);
  autosave();
  return saved;
}

async function refreshMixList() {
  const { mixes } = await (await api(`/api/songs/${mixer.songId}/mixes`)).json();
  mixer.mixes = mixes;
  const sel = $("#mix-list");
  sel.innerHTML = "";
  const head = document.createElement("option");
  head.value = ""; head.textContent = mixes.length ? `Open mix (${mixes.length})` : "No mixes";
  sel.append(head);
  for (const m of mixes) {
    const o = document.createElement("option");
    o.value = m.id; o.textContent = m.name;
    sel.append(o);
  }
  return mixes;
}

function openSavedMix(mixId) {
  const m = (mixer.mixes || []).find((x) => x.id === mixId);
  if (!m) return;
  mixer.mixId = m.id;
  $("#mix-name").value = m.name;
  applyDocument(m.document);
  setStatus(`opened mix “${m.name}”`);
}

const workingKey = (songId) => `stemwright.working.${songId}`;

// The working state survives a reload or a closed tab: the mix, the loop, the playhead and the mix name.
function autosave() {
  clearTimeout(mixer.autosaveTimer);
  if (!mixer.songId || !mixer.strips.length || mixer.restoring) return;
  const state = { document: mixDocument(), loop: { ...mixer.loop }, position: position(), name: $("#mix-name").value, saved: Date.now() };
  try { localStorage.setItem(workingKey(mixer.songId), JSON.stringify(state)); } catch { /* storage disabled or full */ }
}

function loadWorking(songId) {
  try { return JSON.parse(localStorage.getItem(workingKey(songId)) || "null"); } catch { return null; }
}

function restoreWorking(state) {
  applyDocument(state.document);
  const d = mixer.duration;
  const { on, start, end } = state.loop || {};
  if (Number.isFinite(start) && Number.isFinite(end) && end > start && start < d) {
    mixer.loop = { on: !!on, start, end: Math.min(end, d) };
  }
  $("#loop").checked = mixer.loop.on;
  showLoop();
  mixer.startOffset = effectiveOffset(Math.max(0, Math.min(d, Number(state.position) || 0)));
  $("#mix-name").value = state.name || "";
}

async function exportMix() {
  const fmt = $("#export-format").value;
  setStatus("rendering export…");
  const res = await api(`/api/songs/${mixer.songId}/export`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ format: fmt, document: mixDocument() }),
  });
  const blob = await res.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  // the server's name keeps the title's Unicode (RFC 5987 filename*)
  const cd = res.headers.get("content-disposition") || "";
  const star = cd.match(/filename\*=UTF-8''([^;]+)/i);
  a.download = star ? decodeURIComponent(star[1]) : `mix.${fmt}`;
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  setStatus(`exported ${fmt}`);
}

async function openMixer(songId) {
  closeMixer();
  mixer.songId = songId;
  $("#loading").classList.remove("hidden");
  $("#loading").textContent = "Loading stems…";
  const song = await (await api(`/api/songs/${songId}`)).json();
  mixer.song = song;
  $("#nav-song").textContent = `› ${song.title}`;
  $("#download-zip").href = `/api/songs/${songId}/stems.zip`;
  $("#download-ni").href = `/api/songs/${songId}/stems.stem.mp4`;
  showAnalysis(songId);
  refreshCompare().catch(() => {});
  const ctx = audioContext();
  const { stems: peaks } = await (await api(`/api/songs/${songId}/peaks`)).json();
  const buffers = await Promise.all(song.stems.map(async (name) => {
    const data = await (await api(`/api/songs/${songId}/stems/${encodeURIComponent(name)}?format=flac`)).arrayBuffer();
    return ctx.decodeAudioData(data);
  }));
  const container = $("#strips");
  container.innerHTML = "";
  mixer.strips = song.stems.map((name, i) => makeStrip(name, buffers[i], peaks[name]));
  for (const s of mixer.strips) container.append(s.el);
  mixer.duration = Math.max(...buffers.map((b) => b.duration));
  $("#duration").textContent = fmtTime(mixer.duration);
  mixer.startOffset = 0;
  mixer.loop = { on: false, start: 0, end: 0 };
  $("#loop").checked = false;
  showLoop();
  const mixes = await refreshMixList();
  const working = loadWorking(songId);
  mixer.restoring = true;
  mixer.mixId = null;
  $("#mix-name").value = "";
  setMasterGain(0);
  if (working && working.document) { restoreWorking(working); setStatus("restored your last working state"); }
  else if (mixes.length) openSavedMix(mixes[0].id);
  else applyAll();
  mixer.restoring = false;
  resetHistory();
  mixer.dirty = true;
  $("#loading").classList.add("hidden");
  mixer.strips[0] && mixer.strips[0].el.focus();
  cancelAnimationFrame(mixer.raf);
  tick();
}

// Tempo, meter and key: computed once per separation on the server (seconds for a long song), so the mixer
// opens without waiting for it; a song whose stems cannot be analysed just shows nothing.
async function showAnalysis(songId) {
  const out = $("#analysis");
  out.textContent = "analysing…";
  try {
    const r = await api(`/api/songs/${songId}/analysis`);
    if (mixer.songId !== songId) return;
    const a = await r.json();
    mixer.analysis = a;
    out.textContent = `${a.tempo_bpm.toFixed(1)} BPM · ${a.time_signature} · ${a.key}`;
    showTransposedKey();
  } catch (e) {
    if (mixer.songId === songId) out.textContent = "";
  }
}

// Leaving the mixer keeps the working state and frees the decoded stems (hundreds of MB for a song): buffers,
// cached waveform images, the strips' elements and the AudioContext itself.
function closeMixer() {
  autosave();
  stopSources();
  mixer.playing = false;
  cancelAnimationFrame(mixer.raf);
  for (const s of mixer.strips) { s.fader.disconnect(); s.buffer = null; s.image = null; s.peaks = null; }
  mixer.strips = [];
  mixer.focused = null;
  mixer.mixes = [];
  $("#strips").innerHTML = "";
  if (mixer.ctx) { mixer.ctx.close().catch(() => {}); mixer.ctx = null; mixer.master = null; mixer.pitchIn = null; mixer.pitchNode = null; }
  setTimePitch(1, 0);
  mixer.compare = null; renderCompareTable();
  $("#sample-link").classList.add("hidden");
  mixer.view = { zoom: 1, start: 0 }; mixer.masterImage = null; $("#zoom").value = "1"; $("#zoom-out").textContent = "1×";
  mixer.songId = null; mixer.song = null; mixer.duration = 0; mixer.analysis = null;
  clearTimeout(mixer.historyTimer); mixer.history = []; mixer.future = []; mixer.lastDoc = null;
  mixer.original = null; mixer.ab = false; $("#ab").setAttribute("aria-pressed", "false"); $("#ab").textContent = "A/B: mix";
}

function setupMixerControls() {
  $("#play").onclick = togglePlay;
  $("#loop").onchange = (e) => {
    const pos = position();
    mixer.loop.on = e.target.checked && mixer.loop.end > mixer.loop.start;
    e.target.checked = mixer.loop.on;
    if (mixer.playing) startAt(pos); else mixer.startOffset = effectiveOffset(pos);
    showLoop();
    changed();
  };
  $("#preset").onchange = (e) => { if (e.target.value) applyPreset(e.target.value); e.target.value = ""; };
  $("#master-gain").oninput = (e) => { setMasterGain(Number(e.target.value)); changed(); };
  $("#save-mix").onclick = () => saveMix().catch((e) => setStatus(e.message));
  $("#mix-list").onchange = (e) => { if (e.target.value) openSavedMix(e.target.value); e.target.value = ""; };
  $("#mix-name").addEventListener("keydown", (e) => { if (e.key === "Enter") saveMix().catch((err) => setStatus(err.message)); });
  window.addEventListener("pagehide", autosave);
  $("#export").onclick = () => exportMix().catch((e) => setStatus(e.message));
  $("#export-format").onchange = () => { for (const s of mixer.strips) stemLink(s); };
  $("#master-meter").onclick = (e) => e.currentTarget.classList.remove("clipped");
  $("#ab").onclick = () => toggleAB().catch((e) => setStatus(e.message));
  $("#speed").oninput = (e) => { setTimePitch(Number(e.target.value) / 100, mixer.semitones); changed(); };
  $("#transpose").oninput = (e) => { setTimePitch(mixer.speed, Number(e.target.value)); changed(); };
  $("#zoom").oninput = (e) => zoomTo(Number(e.target.value));
  $("#save-sample").onclick = () => saveLoopSample().catch((e) => setStatus(e.message));
  $("#compare").onchange = (e) => { if (e.target.value) loadCompare(e.target.value).catch((err) => setStatus(err.message)); };
  setupRuler();
  $("#master-wave").addEventListener("click", (e) => { const r = e.currentTarget.getBoundingClientRect(); seek(viewTime((e.clientX - r.left) / r.width)); });
  $("#undo").onclick = () => stepHistory(true);
  $("#redo").onclick = () => stepHistory(false);
  const spaceIsTransport = (e) => {
    const tag = (e.target.tagName || "").toLowerCase();
    return e.key === " " && !$("#mixer-view").classList.contains("hidden") && tag !== "select" && !(tag === "input" && e.target.type === "text");
  };
  // A focused button would also "click" on Space's keyup, toggling twice: swallow that default.
  document.addEventListener("keyup", (e) => { if (spaceIsTransport(e)) e.preventDefault(); });
  document.addEventListener("keydown", (e) => {
    if ($("#mixer-view").classList.contains("hidden")) return;
    if (spaceIsTransport(e)) { e.preventDefault(); if (!e.repeat) togglePlay(); return; }
    const typingText = ["input", "textarea"].includes((e.target.tagName || "").toLowerCase()) && e.target.type === "text";
    if ((e.ctrlKey || e.metaKey) && !e.altKey && !typingText && (e.key === "z" || e.key === "Z" || e.key === "y")) {
      e.preventDefault();
      stepHistory(e.key === "z" && !e.shiftKey);
      return;
    }
    if (gridKey(e)) { e.preventDefault(); return; }
    const strip = mixer.focused;
    const typing = ["input", "textarea"].includes((e.target.tagName || "").toLowerCase()) && e.target.type === "text";
    if (!strip || typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "m" || e.key === "M") { strip.mute = !strip.mute; applyAll(); }
    if (e.key === "s" || e.key === "S") { strip.solo = !strip.solo; applyAll(); }
  });
  window.addEventListener("resize", () => { for (const s of mixer.strips) s.image = null; });
}

// -- keyboard on the beat grid: arrows seek by a beat, shift+arrows by a bar, [ ] set the loop in/out on the
// nearest beat, L loop on/off, Home to the start. Without an analysis (yet) arrows step 1 s (shift: 4 s).
// Keys typed into a text field, or arrows on a focused slider or menu, keep their usual meaning.
function gridKey(e) {
  const tag = (e.target.tagName || "").toLowerCase();
  if (e.ctrlKey || e.metaKey || e.altKey || tag === "textarea" || (tag === "input" && e.target.type === "text")) return false;
  const a = mixer.analysis;
  if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
    if (tag === "input" || tag === "select") return false;
    const dir = e.key === "ArrowRight" ? 1 : -1;
    const grid = a ? (e.shiftKey ? a.downbeats : a.beats) : null;
    const pos = position();
    if (!grid || !grid.length) { seek(pos + dir * (e.shiftKey ? 4 : 1)); return true; }
    const eps = 0.02; // a press right after a seek lands a few ms past the beat: still "on" it
    const next = dir > 0 ? grid.find((t) => t > pos + eps) : [...grid].reverse().find((t) => t < pos - eps);
    seek(next === undefined ? (dir > 0 ? mixer.duration : 0) : next);
    return true;
  }
  if (e.key === "Home") { seek(0); return true; }
  if (e.key === "l" || e.key === "L") { const box = $("#loop"); box.checked = !box.checked; box.onchange({ target: box }); return true; }
  if (e.key === "[" || e.key === "]") {
    const pos = snapToBeat(position());
    const bar = a ? (a.beats_per_bar * 60) / a.tempo_bpm : 2;
    const loop = mixer.loop;
    if (e.key === "[") { loop.start = pos; if (loop.end <= loop.start) loop.end = Math.min(mixer.duration, pos + bar); }
    else { loop.end = pos; if (loop.end <= loop.start) loop.start = Math.max(0, pos - bar); }
    if (mixer.playing && loop.on) startAt(position());
    showLoop();
    changed();
    return true;
  }
  return false;
}

function snapToBeat(t) {
  const beats = mixer.analysis && mixer.analysis.beats;
  if (!beats || !beats.length) return t;
  return beats.reduce((best, b) => (Math.abs(b - t) < Math.abs(best - t) ? b : best), beats[0]);
}

// ---------------------------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------------------------
async function route() {
  const m = location.hash.match(/^#\/song\/([0-9a-f]{32})$/);
  $("#library-view").classList.toggle("hidden", !!m);
  $("#mixer-view").classList.toggle("hidden", !m);
  if (m) {
    try { await openMixer(m[1]); } catch (e) { $("#loading").textContent = `Could not open the mixer: ${e.message}`; }
  } else {
    closeMixer();
    $("#nav-song").textContent = "";
    setStatus(""); // a mixer's message ("exported mp3") does not belong to the library
    await refreshSongs();
  }
}

// Render the first `seconds` of the current mix through an OfflineAudioContext with the same graph and parameters
// as live playback (gain, pan, mute/solo, EQ), and return the samples per channel. Used by the browser tests to
// check that what the page plays equals what the server exports from the same mix document.
async function renderOffline(seconds) {
  const rate = mixer.strips[0].buffer.sampleRate;
  const length = Math.min(Math.floor(seconds * rate), Math.min(...mixer.strips.map((s) => s.buffer.length)));
  const off = new OfflineAudioContext(2, length, rate);
  const master = off.createGain();
  master.gain.value = dbToGain(Number($("#master-gain").value));
  master.connect(off.destination);
  for (const s of mixer.strips) {
    const src = off.createBufferSource();
    src.buffer = playing(s);
    const bands = Object.values(EQ).map((spec, i) => {
      const f = off.createBiquadFilter();
      f.type = spec.type; f.frequency.value = spec.hz; if (spec.q) f.Q.value = spec.q;
      f.gain.value = [s.eq.low, s.eq.mid, s.eq.high][i];
      return f;
    });
    const pan = off.createStereoPanner(); pan.pan.value = s.pan;
    const fader = off.createGain(); fader.gain.value = audible(s) ? dbToGain(s.gainDb) : 0;
    src.connect(bands[0]); bands[0].connect(bands[1]); bands[1].connect(bands[2]); bands[2].connect(pan); pan.connect(fader); fader.connect(master);
    src.start(0);
  }
  const out = await off.startRendering();
  const [left, right] = await renderTimePitch([out.getChannelData(0), out.getChannelData(1)], rate);
  return { samplerate: rate, channels: [Array.from(left), Array.from(right)] };
}

window.studio = { mixer, renderOffline, renderTimePitch, setTimePitch, zoomTo, refreshCompare, position, togglePlay, seek, mixDocument, applyPreset, saveMix, refreshSongs, renderSongs,
  library, autosave, uploadAll };

setupDropzone();
setupMixerControls();
window.addEventListener("hashchange", route);
loadModels().catch((e) => setStatus(e.message));
listenEvents();
route();
