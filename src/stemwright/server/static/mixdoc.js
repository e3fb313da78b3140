// The mix document (what the server renders), presets, undo/redo, named mixes saved on the server and the
// working state autosaved in this browser.
import { $, getJson, postJson, setStatus } from "./api.js";
import { cleanEffect, setClean } from "./clean.js";
import { drumsStem, replacedPlaying } from "./drumspanel.js";
import { applyAll, masterGainDb, setMasterGain } from "./graph.js";
import { applyLayers, layersDocument } from "./layers.js";
import { EQ, effectiveOffset, mixer, onChange, position } from "./state.js";
import { loadWorking, saveWorking } from "./storage.js";
import { setTimePitch } from "./transport.js";
import { showLoop } from "./waveform.js";

// A change is autosaved, and recorded as an undo step, once it has settled for 300 ms.
let autosaveTimer = 0, historyTimer = 0;
onChange(() => {
  clearTimeout(autosaveTimer);
  autosaveTimer = setTimeout(autosave, 300);
  clearTimeout(historyTimer);
  historyTimer = setTimeout(recordHistory, 300);
});

// A strip's 3-band EQ as the document's effects.
function eqEffects(s) {
  const effects = [];
  if (s.eq.low) effects.push({ type: "lowshelf", cutoff_hz: EQ.low.hz, gain_db: s.eq.low, q: 0.7071 });
  if (s.eq.mid) effects.push({ type: "peak", cutoff_hz: EQ.mid.hz, gain_db: s.eq.mid, q: EQ.mid.q });
  if (s.eq.high) effects.push({ type: "highshelf", cutoff_hz: EQ.high.hz, gain_db: s.eq.high, q: 0.7071 });
  return effects;
}

export function mixDocument() {
  const channels = mixer.strips.filter((s) => !s.layer).map((s) => {
    // debleed first: the page cleans the stem before its EQ
    const effects = (cleanEffect(s) ? [cleanEffect(s)] : []).concat(eqEffects(s));
    return { stem: s.name, gain_db: s.gainDb <= -60 ? null : s.gainDb, mute: s.mute, solo: s.solo, pan: s.pan, invert: false, offset_s: 0, effects };
  });
  const masterDb = masterGainDb();
  const doc = { version: 1, channels, master: { gain_db: masterDb <= -60 ? null : masterDb, effects: [] }, loudness_lufs: null };
  if (mixer.speed !== 1 || mixer.semitones !== 0) { // version 2 only when needed (mixer/document.py)
    doc.version = 2;
    doc.time_pitch = { speed: mixer.speed, semitones: mixer.semitones };
  }
  const layers = layersDocument(eqEffects);
  if (layers.length) { doc.version = 3; doc.layers = layers; } // version 3 only with layers
  return doc;
}

export function applyDocument(doc) {
  for (const ch of doc.channels || []) {
    const s = mixer.strips.find((x) => !x.layer && x.name === ch.stem);
    if (!s) continue;
    s.gainDb = ch.gain_db === null || ch.gain_db === "-inf" ? -60 : Number(ch.gain_db ?? 0);
    s.pan = Number(ch.pan ?? 0); s.mute = !!ch.mute; s.solo = !!ch.solo;
    s.eq = { low: 0, mid: 0, high: 0 };
    let clean = 0;
    for (const fx of ch.effects || []) {
      if (fx.type === "lowshelf") s.eq.low = fx.gain_db; else if (fx.type === "peak") s.eq.mid = fx.gain_db; else if (fx.type === "highshelf") s.eq.high = fx.gain_db;
      else if (fx.type === "debleed") clean = fx.strength ?? 0.5;
    }
    setClean(s, clean);
  }
  const m = doc.master && doc.master.gain_db;
  setMasterGain(m === null || m === undefined || m === "-inf" ? (m === undefined ? 0 : -60) : Number(m));
  const tp = doc.time_pitch || {};
  setTimePitch(Number(tp.speed ?? 1), Number(tp.semitones ?? 0));
  applyLayers(doc.layers);
  applyAll();
}


// A preset sets the stems' balance. A layer keeps its mute (the drums panel's A/B: a muted earlier replacement),
// and while replaced drums play the drums stem stays muted: unmuting it would play both drum tracks.
export function applyPreset(name) {
  const vocal = mixer.strips.find((s) => s.name === "vocals");
  const replaced = replacedPlaying();
  for (const s of mixer.strips) { s.gainDb = 0; s.solo = false; s.pan = 0; if (!s.layer) s.mute = false; }
  if (replaced) drumsStem().mute = true;
  if (name === "reset") { for (const s of mixer.strips) { s.eq = { low: 0, mid: 0, high: 0 }; setClean(s, 0); } setMasterGain(0); }
  if (name === "instrumental" && vocal) vocal.mute = true;
  if (name === "acapella" && vocal) vocal.solo = true;
  if (name === "karaoke" && vocal) vocal.gainDb = -18; // a low guide vocal over the instrumental
  applyAll();
}


// -- undo/redo of mixer changes: a snapshot of the mix document once a change has settled for 300 ms (a fader
// drag is one step, not a hundred); at most HISTORY_MAX steps back.
const HISTORY_MAX = 100;
const undo = { back: [], forward: [], last: null };
function recordHistory() {
  clearTimeout(historyTimer);
  if (!mixer.songId || !mixer.strips.length) return;
  const doc = JSON.stringify(mixDocument());
  if (doc === undo.last) return;
  if (undo.last !== null) { undo.back.push(undo.last); if (undo.back.length > HISTORY_MAX) undo.back.shift(); }
  undo.forward = [];
  undo.last = doc;
  updateUndoButtons();
}

export function resetHistory() {
  clearTimeout(historyTimer);
  undo.back = []; undo.forward = [];
  undo.last = mixer.strips.length ? JSON.stringify(mixDocument()) : null;
  updateUndoButtons();
}

export function stepHistory(back) {
  recordHistory(); // a change still settling counts as a step first
  const from = back ? undo.back : undo.forward;
  if (!from.length) return;
  (back ? undo.forward : undo.back).push(undo.last);
  undo.last = from.pop();
  mixer.restoring = true;
  applyDocument(JSON.parse(undo.last));
  mixer.restoring = false;
  clearTimeout(autosaveTimer);
  autosaveTimer = setTimeout(autosave, 300);
  updateUndoButtons();
}

function updateUndoButtons() {
  $("#undo").disabled = !undo.back.length;
  $("#redo").disabled = !undo.forward.length;
}

// -- saved mixes (named, on the server) and the working state (autosaved in this browser) ------------------------
// Saving under an existing name replaces that mix; a new name makes a new one.
export async function saveMix() {
  const name = $("#mix-name").value.trim() || "studio mix";
  $("#mix-name").value = name;
  const saved = await (await postJson(`/api/songs/${mixer.songId}/mixes`, { name, document: mixDocument() })).json();
  mixer.mixId = saved.id;
  await refreshMixList();
  setStatus(`mix saved: “${saved.name}” (${new Date(saved.updated * 1000).toLocaleTimeString()})`);
  autosave();
  return saved;
}

export async function refreshMixList() {
  const { mixes } = await getJson(`/api/songs/${mixer.songId}/mixes`);
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

export function openSavedMix(mixId) {
  const m = (mixer.mixes || []).find((x) => x.id === mixId);
  if (!m) return;
  mixer.mixId = m.id;
  $("#mix-name").value = m.name;
  applyDocument(m.document);
  setStatus(`opened mix “${m.name}”`);
}

// The working state survives a reload or a closed tab: the mix, the loop, the playhead and the mix name.
export function autosave() {
  clearTimeout(autosaveTimer);
  if (!mixer.songId || !mixer.strips.length || mixer.restoring) return;
  saveWorking(mixer.songId, { document: mixDocument(), loop: { ...mixer.loop }, position: position(), name: $("#mix-name").value, saved: Date.now() });
}

// Restore this browser's working state of the song, if it has one; says whether it did.
export function restoreWorking(songId) {
  const state = loadWorking(songId);
  if (!state || !state.document) return false;
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
  return true;
}
