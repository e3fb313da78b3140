// The mixer view: opening a song (stems decoded into strips, the working state restored), its controls, the
// per-frame loop, and leaving it (everything freed).
import { $, api, dbToGain, fmtTime, getJson, setStatus } from "./api.js";
import { setClean } from "./clean.js";
import { openDrumsPanel, setupDrumsPanel } from "./drumspanel.js";
import { setupLayers } from "./layers.js";
import { loadCompare, refreshCompare, renderCompareTable, switchVersion } from "./compare.js";
import { applyAll, applyStrip, audioContext, buildStripGraph, drawMeters, eqFilters, masterGainDb, setMasterGain } from "./graph.js";
import { autosave, applyPreset, openSavedMix, refreshMixList, resetHistory, restoreWorking, saveMix, stepHistory } from "./mixdoc.js";
import { exportMix, preparedDownload, saveLoopSample, showAnalysis, toggleAB } from "./practice.js";
import { COLORS, audible, changed, effectiveOffset, mixer, playing, position } from "./state.js";
import { renderTimePitch } from "./timepitch.js";
import { scheduleMetronome, seek, setTimePitch, startAt, stopSources, togglePlay } from "./transport.js";
import { drawOverlays, setupRuler, setupWaveform, showLoop, viewTime, zoomTo } from "./waveform.js";
import { closeStream, followStream, loadStems } from "./progressive.js";

function makeStrip(name, buffer, peaks) {
  const el = $("#strip-template").content.firstElementChild.cloneNode(true);
  const strip = { name, buffer, peaks, el, gainDb: 0, pan: 0, mute: false, solo: false, eq: { low: 0, mid: 0, high: 0 }, clean: 0 };
  el.dataset.stem = name;
  el.setAttribute("aria-label", `${name} strip`);
  $(".name", el).textContent = name;
  $(".name", el).title = name;
  $(".swatch", el).style.background = COLORS[name] || "#aaa";
  // every control names its stem for a screen reader: "Mute vocals", "Gain of vocals", …
  const label = { ".mute": `Mute ${name}`, ".solo": `Solo ${name}`, ".gain": `Gain of ${name}`, ".pan": `Pan of ${name}`,
    ".clean": `Clean (bleed reducer) of ${name}`, ".eq-low": `Low EQ of ${name}`, ".eq-mid": `Mid EQ of ${name}`, ".eq-high": `High EQ of ${name}`,
    ".meter": `Level meter of ${name} (click to reset the clip indicator)`, "canvas": `Waveform of ${name}: click to seek, drag to select a loop` };
  for (const [sel, text] of Object.entries(label)) $(sel, el).setAttribute("aria-label", text);
  $(".eq", el).setAttribute("aria-label", `3-band EQ of ${name}`);
  buildStripGraph(strip);
  $(".gain", el).oninput = (e) => { strip.gainDb = Number(e.target.value); applyStrip(strip); changed(); };
  $(".pan", el).oninput = (e) => { strip.pan = Number(e.target.value); applyStrip(strip); changed(); };
  for (const band of ["low", "mid", "high"]) $(`.eq-${band}`, el).oninput = (e) => { strip.eq[band] = Number(e.target.value); applyStrip(strip); changed(); };
  $(".clean", el).oninput = (e) => { setClean(strip, e.target.value); changed(); };
  $(".mute", el).onclick = () => { strip.mute = !strip.mute; applyAll(); };
  $(".solo", el).onclick = () => { strip.solo = !strip.solo; applyAll(); };
  $(".version", el).onclick = () => switchVersion(strip);
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

// Redraw only while playing or after a change: a paused mixer costs no frames.
function tick() {
  if (mixer.playing || mixer.dirty) { mixer.dirty = false; mixer.draws += 1; drawOverlays(); drawMeters(); }
  scheduleMetronome();
  mixer.raf = requestAnimationFrame(tick);
}

export async function openMixer(songId) {
  closeMixer();
  mixer.songId = songId;
  setStatus(""); // the last song's message ("mix saved …") does not belong to this one
  $("#loading").classList.remove("hidden");
  $("#loading").textContent = "Loading stems…";
  const song = await getJson(`/api/songs/${songId}`);
  mixer.song = song;
  $("#nav-song").textContent = `› ${song.title}`;
  $("#download-zip").href = `/api/songs/${songId}/stems.zip`;
  $("#download-ni").href = `/api/songs/${songId}/stems.stem.mp4`;
  showAnalysis(songId);
  const ctx = audioContext();
  // raw float32 segments, nothing to decode; a song still being separated opens with its first seconds
  const { names, buffers, peaks } = await loadStems(songId, ctx);
  refreshCompare().catch(() => {}); // after the stems: the ones loaded are the current separation (compare.js)
  const container = $("#strips");
  container.innerHTML = "";
  mixer.strips = names.map((name, i) => makeStrip(name, buffers[i], peaks && peaks[name]));
  for (const s of mixer.strips) container.append(s.el);
  mixer.duration = Math.max(...buffers.map((b) => b.duration));
  $("#duration").textContent = fmtTime(mixer.duration);
  mixer.startOffset = 0;
  mixer.loop = { on: false, start: 0, end: 0 };
  $("#loop").checked = false;
  showLoop();
  const mixes = await refreshMixList();
  mixer.restoring = true;
  mixer.mixId = null;
  $("#mix-name").value = "";
  setMasterGain(0);
  if (restoreWorking(songId)) setStatus("restored your last working state");
  else if (mixes.length) openSavedMix(mixes[0].id);
  else applyAll();
  await mixer.layersLoading; // the first undo step and autosave include the document's layers
  mixer.restoring = false;
  resetHistory();
  openDrumsPanel().catch((e) => setStatus(`drums panel: ${e.message}`));
  mixer.dirty = true;
  $("#loading").classList.add("hidden");
  mixer.strips[0] && mixer.strips[0].el.focus();
  cancelAnimationFrame(mixer.raf);
  tick();
  followStream();
}

// Leaving the mixer keeps the working state and frees the decoded stems (hundreds of MB for a song): buffers,
// cached waveform images, the strips' elements and the AudioContext itself.
export function closeMixer() {
  closeStream();
  autosave();
  stopSources();
  mixer.playing = false;
  cancelAnimationFrame(mixer.raf);
  for (const s of mixer.strips) { s.fader.disconnect(); s.buffer = null; s.image = null; s.peaks = null; }
  mixer.strips = [];
  mixer.focused = null;
  mixer.mixes = [];
  $("#strips").innerHTML = "";
  if (mixer.ctx) { mixer.ctx.close().catch(() => {}); mixer.ctx = null; mixer.master = null; mixer.masterMeter = null; mixer.pitchIn = null; mixer.pitchNode = null; mixer.pitchReady = null; }
  setTimePitch(1, 0);
  mixer.compare = null; renderCompareTable();
  $("#sample-link").classList.add("hidden");
  mixer.view = { zoom: 1, start: 0 }; mixer.masterImage = null; $("#zoom").value = "1"; $("#zoom-out").textContent = "1×";
  mixer.songId = null; mixer.song = null; mixer.duration = 0; mixer.analysis = null;
  resetHistory();
  mixer.original = null; mixer.ab = false; $("#ab").setAttribute("aria-pressed", "false"); $("#ab").textContent = "A/B: mix";
}

function onLoopBox(e) {
  const pos = position();
  mixer.loop.on = e.target.checked && mixer.loop.end > mixer.loop.start;
  e.target.checked = mixer.loop.on;
  if (mixer.playing) startAt(pos); else mixer.startOffset = effectiveOffset(pos);
  showLoop();
  changed();
}

export function setupMixerControls() {
  const report = (p) => p.catch((e) => setStatus(e.message));
  $("#play").onclick = togglePlay;
  $("#loop").onchange = onLoopBox;
  $("#preset").onchange = (e) => { if (e.target.value) applyPreset(e.target.value); e.target.value = ""; };
  $("#master-gain").oninput = (e) => { setMasterGain(Number(e.target.value)); changed(); };
  $("#save-mix").onclick = () => report(saveMix());
  $("#mix-list").onchange = (e) => { if (e.target.value) openSavedMix(e.target.value); e.target.value = ""; };
  $("#mix-name").addEventListener("keydown", (e) => { if (e.key === "Enter") report(saveMix()); });
  window.addEventListener("pagehide", autosave);
  $("#export").onclick = () => report(exportMix());
  for (const [id, what] of [["#download-zip", "the stems .zip"], ["#download-ni", "NI Stems"]]) {
    $(id).addEventListener("click", (e) => { e.preventDefault(); report(preparedDownload(e.currentTarget, what)); });
  }
  $("#export-format").onchange = () => { for (const s of mixer.strips) stemLink(s); };
  $("#master-meter").onclick = (e) => e.currentTarget.classList.remove("clipped");
  $("#ab").onclick = () => report(toggleAB());
  $("#speed").oninput = (e) => { setTimePitch(Number(e.target.value) / 100, mixer.semitones); changed(); };
  $("#transpose").oninput = (e) => { setTimePitch(mixer.speed, Number(e.target.value)); changed(); };
  $("#zoom").oninput = (e) => zoomTo(Number(e.target.value));
  $("#save-sample").onclick = () => report(saveLoopSample());
  $("#compare").onchange = (e) => { if (e.target.value) report(loadCompare(e.target.value)); };
  $("#tools").onclick = () => {
    const open = $(".transport").classList.toggle("tools-open");
    $("#tools").setAttribute("aria-expanded", String(open));
  };
  setupRuler();
  setupLayers(makeStrip);
  setupDrumsPanel();
  $("#master-wave").addEventListener("click", (e) => { const r = e.currentTarget.getBoundingClientRect(); seek(viewTime((e.clientX - r.left) / r.width)); });
  $("#undo").onclick = () => stepHistory(true);
  $("#redo").onclick = () => stepHistory(false);
  window.addEventListener("resize", () => { for (const s of mixer.strips) s.image = null; });
}

// Render the first `seconds` of the current mix through an OfflineAudioContext with the same graph and parameters
// as live playback (gain, pan, mute/solo, EQ, speed, transpose): samples per channel, to compare with what the
// server exports from the same mix document.
export async function renderOffline(seconds) {
  const rate = mixer.strips[0].buffer.sampleRate;
  const length = Math.min(Math.floor(seconds * rate), Math.min(...mixer.strips.map((s) => s.buffer.length)));
  const off = new OfflineAudioContext(2, length, rate);
  const master = off.createGain();
  master.gain.value = dbToGain(masterGainDb());
  master.connect(off.destination);
  for (const s of mixer.strips) {
    const src = off.createBufferSource();
    src.buffer = playing(s);
    const bands = eqFilters(off, s.eq);
    const pan = off.createStereoPanner(); pan.pan.value = s.pan;
    const fader = off.createGain(); fader.gain.value = audible(s) ? dbToGain(s.gainDb) : 0;
    src.connect(bands[0]); bands[2].connect(pan); pan.connect(fader); fader.connect(master);
    src.start(0);
  }
  const out = await off.startRendering();
  const [left, right] = await renderTimePitch([out.getChannelData(0), out.getChannelData(1)], rate);
  return { samplerate: rate, channels: [Array.from(left), Array.from(right)] };
}
