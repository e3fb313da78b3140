// The mixer's state (one store) and its change notification: modules that must react to a change of the mix
// (autosave, undo history) subscribe with onChange(); the drawing loop reads `dirty`.

export const COLORS = { vocals: "#ff7aa8", drums: "#ffb84f", bass: "#7d8bff", other: "#5fd38d", guitar: "#ffe066", piano: "#b59cff",
  no_vocals: "#5fd3c8", accompaniment: "#5fd3c8" };
export const EQ = { low: { type: "lowshelf", hz: 250 }, mid: { type: "peaking", hz: 1000, q: 0.7071 }, high: { type: "highshelf", hz: 4000 } };

export const mixer = {
  ctx: null, songId: null, song: null, strips: [], master: null, masterMeter: null, duration: 0,
  playing: false, startCtxTime: 0, startOffset: 0, sources: [],
  loop: { on: false, start: 0, end: 0 }, focused: null, mixId: null, mixes: [], raf: 0,
  dirty: true, draws: 0, restoring: false, analysis: null, clicks: [], clickedUntil: 0,
  original: null, ab: false, mixBus: null,
  speed: 1, semitones: 0, pitchIn: null, pitchNode: null, pitchReady: null,
  until: null, scheduledTo: null, // the separated end while separating (progressive.js), and what is scheduled
  layersLoading: null, layerGrid: undefined, // layers.js: a document's layers loading, the export's bar grid
  view: { zoom: 1, start: 0 }, masterImage: null, masterKey: "", rulerLabels: [], chordLabels: [], compare: null,
};

const listeners = [];
export function onChange(fn) { listeners.push(fn); }

// Something the user sees or would lose changed: redraw, and tell the subscribers (not while a saved state is
// being restored, which is no change of the user's).
export function changed() {
  mixer.dirty = true;
  if (!mixer.songId || mixer.restoring) return;
  for (const fn of listeners) fn();
}

// The buffer a strip plays: the compared separation's when switched to it, else the cleaned stem (clean.js).
export const playing = (s) => (s.useAlt && s.alt ? s.alt : s.clean > 0 && s.cleaned ? s.cleaned : s.buffer);

// The tempo the clicks and loop lengths use: the analysed one, or the mean tempo of a song with no steady tempo.
export const gridBpm = (a) => a.tempo_bpm ?? a.mean_bpm;
export const looping = () => mixer.loop.on && mixer.loop.end > mixer.loop.start;

// Where playback starts for a requested offset. A looping AudioBufferSource started past loopEnd plays from
// loopStart (Web Audio spec, "playhead position" of AudioBufferSourceNode), so the transport does the same and
// the clock never counts on past the region while the loop is what is heard.
export function effectiveOffset(offset) {
  return looping() && offset >= mixer.loop.end ? mixer.loop.start : offset;
}

export function position() {
  if (!mixer.playing) return mixer.startOffset;
  let p = mixer.startOffset + Math.max(0, mixer.ctx.currentTime - mixer.startCtxTime) * mixer.speed;
  const { start, end } = mixer.loop;
  if (looping() && p >= end) p = start + ((p - start) % (end - start));
  return Math.min(p, mixer.duration);
}

export function audible(strip) {
  const anySolo = mixer.strips.some((s) => s.solo);
  return !strip.mute && (!anySolo || strip.solo);
}

export function snapToBeat(t) {
  const beats = mixer.analysis && mixer.analysis.beats;
  if (!beats || !beats.length) return t;
  return beats.reduce((best, b) => (Math.abs(b - t) < Math.abs(best - t) ? b : best), beats[0]);
}
