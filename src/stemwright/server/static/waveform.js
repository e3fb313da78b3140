// The waveforms (one per strip, and the master's), the time ruler with bar numbers and loop handles, zoom, and
// the per-frame redraw of playhead and loop.
import { $, dbToGain, fmtTime } from "./api.js";
import { masterGainDb } from "./graph.js";
import { COLORS, audible, changed, mixer, playing, position, snapToBeat } from "./state.js";
import { seek, startAt } from "./transport.js";
import { drawChordLane } from "./chords.js";

// -- waveform: click to seek, drag to select the loop region -----------------------------------------------------
export function setupWaveform(strip) {
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
  if (mixer.view.zoom === 1 && strip.peaks) { // the server's peaks cover the whole song
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
export const viewTime = (frac) => mixer.view.start + Math.min(1, Math.max(0, frac)) * viewSpan();
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


export function zoomTo(zoom) { setView(zoom, position() - (mixer.duration || 1) / Math.max(1, zoom) / 2); }

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
  const master = dbToGain(masterGainDb());
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
export function setupRuler() {
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

export function drawOverlays() {
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
    if (mixer.until !== null) { // not separated yet
      g.fillStyle = "rgba(0,0,0,.5)";
      g.fillRect(viewX(mixer.until, w), 0, w, h);
    }
    g.fillStyle = "#fff";
    g.fillRect(Math.floor(viewX(pos, w)), 0, Math.max(1, devicePixelRatio), h);
  }
  drawRuler();
  drawChordLane(viewX, mixer.view.start, mixer.view.start + viewSpan());
  drawMasterWave();
  $("#position").textContent = fmtTime(pos);
}


export function showLoop() {
  mixer.dirty = true;
  const { start, end } = mixer.loop;
  $("#save-sample").disabled = !(end > start);
  $("#loop-range").textContent = end > start ? `${fmtTime(start)}–${fmtTime(end)}` : "drag a waveform to loop";
}

