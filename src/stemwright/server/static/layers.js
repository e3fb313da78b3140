// Your own layers (mix document v3 "layers", mixer/layers.py): an audio or MIDI file dropped onto the mixer (or
// chosen with "Add layer…") is stored by the server (POST /api/songs/ID/layers: checked, MIDI rendered with
// FluidSynth) and gets its own strip: gain, pan, EQ, mute, like a stem's (a layer has no solo and is silent while
// a stem is soloed, as the export renders it). It starts on the bar nearest the drop point on the grid the export
// uses (GET .../layers/grid: "at": "bar:N"), or at that second when the song has no beat. The strip plays the
// audio the server made from the file exactly as the export reads it, placed in a buffer as long as the song, so
// the transport, loops, speed and the offline render treat it like a stem.
import { $, api, getJson, setStatus } from "./api.js";
import { applyStrip } from "./graph.js";
import { changed, mixer, position } from "./state.js";
import { startAt } from "./transport.js";
import { viewTime } from "./waveform.js";

const MAX_LAYERS = 16; // the server's bound on layers in a mix document
const PEAK_BUCKETS = 1600; // as the server's stem peaks

let makeStrip = null; // mixer.js hands its strip factory over (setupLayers), so the strip markup lives in one place

export function setupLayers(stripFactory) {
  makeStrip = stripFactory;
  const view = $("#mixer-view");
  view.addEventListener("dragover", (e) => { if (mixer.songId) { e.preventDefault(); view.classList.add("layer-over"); } });
  view.addEventListener("dragleave", () => view.classList.remove("layer-over"));
  view.addEventListener("drop", (e) => {
    e.preventDefault();
    view.classList.remove("layer-over");
    if (!mixer.songId || !e.dataTransfer.files.length) return;
    const canvas = e.target.closest && e.target.closest("canvas.wave");
    let at = position();
    if (canvas) { const r = canvas.getBoundingClientRect(); at = viewTime((e.clientX - r.left) / r.width); }
    report(addLayerFiles([...e.dataTransfer.files], at));
  });
  $("#add-layer").onclick = () => $("#layer-input").click();
  $("#layer-input").onchange = (e) => { report(addLayerFiles([...e.target.files], position())); e.target.value = ""; };
}

const report = (p) => p.catch((e) => setStatus(e.message));
export const layerStrips = () => mixer.strips.filter((s) => s.layer);

// Upload the files one after another and add a strip for each, starting near `at` seconds.
export async function addLayerFiles(files, at) {
  for (const file of files) {
    if (layerStrips().length >= MAX_LAYERS) throw new Error(`a mix holds at most ${MAX_LAYERS} layers`);
    setStatus(`adding layer ${file.name}…`);
    const form = new FormData();
    form.append("file", file);
    const songId = mixer.songId;
    const info = await (await api(`/api/songs/${songId}/layers`, { method: "POST", body: form })).json();
    if (mixer.songId !== songId) return;
    const place = await snap(at);
    await addLayerStrip({ file: info.file, name: info.name, ...place, gain_db: 0, pan: 0, mute: false, effects: [] });
    changed();
    setStatus(`added layer ${info.name} at ${place.at ? place.at.replace("bar:", "bar ") : `${place.offset_s.toFixed(2)} s`}`);
  }
}

// The grid the export places layers on (fetched once per song): {tempo, downbeat, beats_per_bar, beats} or null;
// `beats` is null for a constant tempo, else the beat times of a changing one.
async function grid() {
  if (mixer.layerGrid === undefined || mixer.layerGrid.songId !== mixer.songId) {
    const songId = mixer.songId;
    const { grid: g } = await getJson(`/api/songs/${songId}/layers/grid`);
    mixer.layerGrid = { songId, grid: g };
  }
  return mixer.layerGrid.grid;
}

// Seconds of grid beat k (0 = the first downbeat): mixer/analysis.py Rhythm.beat_time, the same arithmetic.
function beatTime(g, k) {
  const b = g.beats;
  if (!b) return g.downbeat + k * (60 / g.tempo);
  if (k <= 0) return b[0] + k * (b[1] - b[0]);
  if (k >= b.length - 1) return b[b.length - 1] + (k - (b.length - 1)) * (b[b.length - 1] - b[b.length - 2]);
  const i = Math.floor(k);
  return b[i] + (k - i) * (b[i + 1] - b[i]);
}

// `t` seconds snapped to the nearest bar line (bar 1 at the grid's first downbeat), or whole milliseconds.
async function snap(t) {
  const g = await grid();
  if (!g) return { offset_s: Math.round(Math.max(0, t) * 1000) / 1000 };
  let bar = 1;
  while (Math.abs(beatTime(g, bar * g.beats_per_bar) - t) < Math.abs(beatTime(g, (bar - 1) * g.beats_per_bar) - t)) bar++;
  return { at: `bar:${bar}` };
}

// Where a layer starts, in samples at `rate`: mixer/layers.py layer_start, the same arithmetic.
async function startSample(layer, rate) {
  if (!layer.at) return Math.round((layer.offset_s || 0) * rate);
  const g = await grid();
  if (!g) throw new Error(`layer ${layer.name || layer.file}: this song has no beat grid for ${layer.at}`);
  const [bar, beat = 1] = layer.at.slice(4).split(".").map(Number);
  return Math.round(beatTime(g, (bar - 1) * g.beats_per_bar + beat - 1) * rate);
}

// The layer's audio placed in a buffer as long as the song (cut at its end, as the export does).
function placed(audio, start) {
  const length = Math.max(...mixer.strips.filter((s) => !s.layer).map((s) => s.buffer.length));
  const out = mixer.ctx.createBuffer(audio.numberOfChannels, length, audio.sampleRate);
  const n = Math.min(audio.length, length - start);
  for (let ch = 0; ch < audio.numberOfChannels && n > 0; ch++) out.copyToChannel(audio.getChannelData(ch).subarray(0, n), ch, start);
  return out;
}

function peaksOf(buffer) {
  const data = buffer.getChannelData(0), min = [], max = [];
  for (let i = 0; i < PEAK_BUCKETS; i++) {
    const a = Math.floor((i / PEAK_BUCKETS) * data.length), b = Math.max(a + 1, Math.floor(((i + 1) / PEAK_BUCKETS) * data.length));
    let lo = 0, hi = 0;
    for (let j = a; j < b && j < data.length; j++) { if (data[j] < lo) lo = data[j]; if (data[j] > hi) hi = data[j]; }
    min.push(lo); max.push(hi);
  }
  return { min, max };
}

// A strip for a layer of the mix document (fields as in the document).
export async function addLayerStrip(layer) {
  const songId = mixer.songId;
  // a MIDI layer on the grid plays at the song's tempo from its bar: the server renders it for that place
  const onGrid = layer.at && /\.midi?$/i.test(layer.file) ? `?at=${encodeURIComponent(layer.at)}` : "";
  const data = await (await api(`/api/songs/${songId}/layers/${encodeURIComponent(layer.file)}${onGrid}`)).arrayBuffer();
  const audio = await mixer.ctx.decodeAudioData(data);
  const buffer = placed(audio, await startSample(layer, audio.sampleRate));
  if (mixer.songId !== songId) return null;
  const name = layer.name || layer.file;
  const strip = makeStrip(name, buffer, peaksOf(buffer));
  strip.layer = { file: layer.file, at: layer.at || null, offset_s: layer.at ? 0 : layer.offset_s || 0 };
  applyLayerFields(strip, layer);
  const el = strip.el;
  delete el.dataset.stem;
  el.dataset.layer = layer.file;
  el.classList.add("layer");
  el.setAttribute("aria-label", `layer ${name}`);
  for (const sel of [".solo", ".download", ".version", ".clean-label"]) $(sel, el).classList.add("hidden");
  const where = $(".layer-at", el);
  where.classList.remove("hidden");
  where.textContent = strip.layer.at ? strip.layer.at.replace("bar:", "bar ") : `${strip.layer.offset_s.toFixed(2)} s`;
  const remove = $(".remove-layer", el);
  remove.classList.remove("hidden");
  remove.setAttribute("aria-label", `Remove layer ${name}`);
  remove.onclick = () => { removeLayerStrip(strip); changed(); };
  mixer.strips.push(strip);
  $("#strips").append(el);
  applyStrip(strip);
  mixer.dirty = true;
  if (mixer.playing) startAt(position());
  return strip;
}

function applyLayerFields(strip, layer) {
  const g = layer.gain_db;
  strip.gainDb = g === null || g === "-inf" ? -60 : Number(g ?? 0);
  strip.pan = Number(layer.pan ?? 0); strip.mute = !!layer.mute;
  strip.eq = { low: 0, mid: 0, high: 0 };
  for (const fx of layer.effects || []) {
    if (fx.type === "lowshelf") strip.eq.low = fx.gain_db; else if (fx.type === "peak") strip.eq.mid = fx.gain_db; else if (fx.type === "highshelf") strip.eq.high = fx.gain_db;
  }
}

export function removeLayerStrip(strip) {
  mixer.strips.splice(mixer.strips.indexOf(strip), 1);
  strip.fader.disconnect();
  strip.el.remove();
  if (mixer.playing) startAt(position());
}

// Layers of an applied document whose audio is still loading: the document keeps them meanwhile.
const pending = new Map();

// The mix document's "layers" for the layer strips (`effectsOf` builds a strip's EQ entries, as for stems).
export function layersDocument(effectsOf) {
  return layerStrips().map((s) => ({
    file: s.layer.file, name: s.name, gain_db: s.gainDb <= -60 ? null : s.gainDb, pan: s.pan, mute: s.mute, loop: 1,
    effects: effectsOf(s), ...(s.layer.at ? { at: s.layer.at } : { offset_s: s.layer.offset_s }),
  })).concat([...pending.values()]);
}

// A document's layers on the page: strips whose file the document no longer has go, missing ones are loaded (in the
// background: the page keeps working while a layer's audio arrives), the others take the document's settings.
export function applyLayers(layers = []) {
  const wanted = new Map(layers.map((la) => [la.file, la]));
  for (const s of layerStrips()) if (!wanted.has(s.layer.file)) removeLayerStrip(s);
  const have = new Set(layerStrips().map((s) => s.layer.file));
  for (const s of layerStrips()) applyLayerFields(s, wanted.get(s.layer.file));
  const missing = layers.filter((la) => !have.has(la.file));
  for (const la of missing) pending.set(la.file, la);
  mixer.layersLoading = Promise.all(missing.map((la) => addLayerStrip(la)
    .catch((e) => setStatus(`could not load layer ${la.name || la.file}: ${e.message}`))
    .finally(() => pending.delete(la.file))));
}
