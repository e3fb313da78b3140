// stemwright studio: the library and the live stem mixer, plain ES modules on the Web Audio API (no build step).
//   api.js       the HTTP API and DOM helpers          state.js     the mixer's store and change notification
//   library.js   song list, uploads, event stream      storage.js   what the browser remembers (localStorage)
//   graph.js     audio graph and level meters          waveform.js  waveforms, ruler, zoom, per-frame drawing
//   transport.js play/seek/loop/end, metronome        timepitch.js speed and transpose
//   pitchstream.js the SoundTouch stream (fixed delay)  pitch-worklet.js  the shifter on the audio thread
//   compare.js   compare two models' separations      practice.js  analysis, A/B, loop samples, export
//   mixdoc.js    mix document, undo, saved mixes, autosave          keys.js      keyboard shortcuts
//   mixer.js     open/close a song, the controls       main.js      routing and the test façade (window.studio)
//   progressive.js the stems as raw segments; play while separating (wait at the separated end, resume)
//   clean.js     a strip's clean knob (server-rendered debleed)   layers.js    your own layers (dropped files)
//   drumspanel.js  replace the drums (samples per class, blend, A/B)
import { $, setStatus } from "./api.js";
import { library, listenEvents, loadModels, refreshSongs, renderSongs, setupDropzone, uploadAll } from "./library.js";
import { setupKeys } from "./keys.js";
import { closeMixer, openMixer, renderOffline, setupMixerControls } from "./mixer.js";
import { cleanReady } from "./clean.js";
import { applyPreset, autosave, mixDocument, saveMix } from "./mixdoc.js";
import { refreshCompare } from "./compare.js";
import { mixer, playing, position } from "./state.js";
import { cancelAutoOpen, streamState } from "./progressive.js";
import { pitchFactor, renderTimePitch, shifterDelay } from "./timepitch.js";
import { seek, setTimePitch, togglePlay } from "./transport.js";
import { showLoop, zoomTo } from "./waveform.js";

async function route() {
  const m = location.hash.match(/^#\/song\/([0-9a-f]{32})$/);
  $("#library-view").classList.toggle("hidden", !!m);
  $("#mixer-view").classList.toggle("hidden", !m);
  if (m) {
    try { await openMixer(m[1]); } catch (e) { $("#loading").textContent = `Could not open the mixer: ${e.message}`; }
  } else {
    cancelAutoOpen();
    closeMixer();
    $("#nav-song").textContent = "";
    setStatus(""); // a mixer's message ("exported mp3") does not belong to the library
    await refreshSongs();
  }
}

// How many pixels of the master waveform's image are drawn (a flat line draws one per column).
function litPixels(image) {
  let n = 0;
  for (let i = 3; i < image.data.length; i += 4) if (image.data[i] > 0) n++;
  return n;
}

// A copy of what the mixer shows and plays, as plain data: the browser tests read the page through this.
function snapshot() {
  const m = mixer;
  return {
    songId: m.songId, playing: m.playing, position: position(), duration: m.duration, startOffset: m.startOffset,
    startCtxTime: m.startCtxTime, ctxTime: m.ctx ? m.ctx.currentTime : null, ctxState: m.ctx ? m.ctx.state : null,
    sampleRate: m.ctx ? m.ctx.sampleRate : null,
    loop: { ...m.loop }, view: { ...m.view }, draws: m.draws, clicks: m.clicks.map((c) => ({ ...c })),
    rulerLabels: m.rulerLabels.map((l) => ({ ...l })), chordLabels: m.chordLabels.map((l) => ({ ...l })), speed: m.speed, semitones: m.semitones,
    pitchFactor: m.pitchNode ? m.pitchNode.factor : pitchFactor(), shifterDelay: shifterDelay(),
    compare: m.compare && { jobId: m.compare.jobId, models: [...m.compare.models], bleed: [...m.compare.bleed] },
    sourceRates: m.sources.map((s) => s.playbackRate.value), stream: streamState(),
    masterImage: m.masterImage && { width: m.masterImage.width, lit: litPixels(m.masterImage) },
    strips: m.strips.map((s, i) => ({ name: s.name, gainDb: s.gainDb, pan: s.pan, mute: s.mute, solo: s.solo,
      faderGain: s.fader.gain.value, clean: s.clean, cleanReady: cleanReady(s), layer: s.layer ? { ...s.layer } : null, useAlt: !!s.useAlt, hasImage: !!s.image,
      playingAlt: !!(m.sources[i] && s.alt && m.sources[i].buffer === s.alt && playing(s) === s.alt) })),
  };
}

// The façade for scripts and the browser tests: read with state()/songs(), act through the functions the
// controls use. Nothing else of the page's internals is reachable from outside.
window.studio = Object.freeze({
  state: snapshot,
  songs: () => structuredClone(library.songs),
  position, togglePlay, seek, setTimePitch, zoomTo, applyPreset, saveMix, mixDocument, autosave,
  refreshCompare, refreshSongs, uploadAll, renderOffline, renderTimePitch,
  // samples of a strip's buffer (what the page plays), at most 2^20 a call
  stemSamples(name, channel, start, count) {
    const s = mixer.strips.find((x) => x.name === name);
    return s ? Array.from(s.buffer.getChannelData(channel).subarray(start, start + Math.min(count, 1 << 20))) : null;
  },
  setLoop(loop) { Object.assign(mixer.loop, loop); $("#loop").checked = mixer.loop.on; showLoop(); },
  redraw() { mixer.dirty = true; },
  showSongs(songs) { library.songs = songs; renderSongs(); },
});

setupDropzone();
setupMixerControls();
setupKeys();
window.addEventListener("hashchange", route);
loadModels().catch((e) => setStatus(e.message));
listenEvents();
route();
