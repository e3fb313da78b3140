// The Web Audio graph and the level meters. All on one AudioContext clock, so stems stay sample-synchronised:
//   AudioBufferSource -> lowshelf(250 Hz) -> peaking(1 kHz) -> highshelf(4 kHz) -> StereoPanner -> fader Gain
//   strips' faders -> mix bus (muted while A/B plays the original) -> pitchIn -> time/pitch -> master Gain
// The mix document built from this state is the one the server renders (docs/ARCHITECTURE.md): gain in dB,
// pan with the StereoPannerNode law, mute/solo as in a DAW, so what plays here is what the export writes.
import { $, dbToGain } from "./api.js";
import { EQ, audible, changed, mixer } from "./state.js";
import { loadPitchWorklet, routePitch } from "./timepitch.js";

export function audioContext() {
  if (!mixer.ctx) {
    mixer.ctx = new AudioContext({ latencyHint: "interactive" });
    mixer.master = mixer.ctx.createGain();
    mixer.master.connect(mixer.ctx.destination);
    mixer.masterMeter = makeMeter(mixer.ctx, mixer.master);
    mixer.pitchIn = mixer.ctx.createGain(); // the mix and the original, before speed/transpose
    mixer.mixBus = mixer.ctx.createGain(); // every strip's fader; muted while A/B plays the original
    mixer.mixBus.connect(mixer.pitchIn);
    loadPitchWorklet(mixer.ctx);
    routePitch();
  }
  return mixer.ctx;
}

// The EQ bands of a strip, in any (live or offline) context.
export function eqFilters(ctx, eq = { low: 0, mid: 0, high: 0 }) {
  const filters = Object.entries(EQ).map(([band, spec]) => {
    const f = ctx.createBiquadFilter();
    f.type = spec.type; f.frequency.value = spec.hz; if (spec.q) f.Q.value = spec.q; f.gain.value = eq[band];
    return f;
  });
  filters[0].connect(filters[1]); filters[1].connect(filters[2]);
  return filters;
}

export function buildStripGraph(strip) {
  const ctx = audioContext();
  const filters = eqFilters(ctx);
  const panner = ctx.createStereoPanner();
  const fader = ctx.createGain();
  filters[2].connect(panner); panner.connect(fader); fader.connect(mixer.mixBus);
  Object.assign(strip, { input: filters[0], filters, panner, fader, meter: makeMeter(ctx, fader) });
}

// -- level meters: the peak of the last ~21 ms (1024 samples at 48 kHz) after each fader and after the master
// gain, on a -60..0 dBFS scale; a sample at or over full scale lights the clip indicator until it is clicked.
// A stopped transport reads as silence.
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

export function drawMeters() {
  for (const s of mixer.strips) readMeter(s.meter, $(".meter", s.el));
  if (mixer.masterMeter) readMeter(mixer.masterMeter, $("#master-meter"));
}

// While playing, parameters glide over ~5 ms (no zipper noise); while paused they are set at once, because
// Chromium does not advance automation on nodes that have no active input.
export function setParam(param, value) {
  const t = mixer.ctx.currentTime;
  param.cancelScheduledValues(0);
  if (mixer.playing) { param.setValueAtTime(param.value, t); param.setTargetAtTime(value, t, 0.005); } else param.value = value;
}

const fmtDb = (db) => (db <= -60 ? "-∞ dB" : `${db.toFixed(1)} dB`);

export function applyStrip(strip) {
  setParam(strip.fader.gain, audible(strip) ? dbToGain(strip.gainDb) : 0);
  setParam(strip.panner.pan, strip.pan);
  strip.filters[0].gain.value = strip.eq.low; strip.filters[1].gain.value = strip.eq.mid; strip.filters[2].gain.value = strip.eq.high;
  const el = strip.el;
  $(".gain", el).value = strip.gainDb; $(".gain-out", el).textContent = fmtDb(strip.gainDb);
  $(".pan", el).value = strip.pan; $(".pan-out", el).textContent = strip.pan === 0 ? "C" : `${strip.pan < 0 ? "L" : "R"}${Math.round(Math.abs(strip.pan) * 100)}`;
  $(".eq-low", el).value = strip.eq.low; $(".eq-mid", el).value = strip.eq.mid; $(".eq-high", el).value = strip.eq.high;
  $(".mute", el).setAttribute("aria-pressed", String(strip.mute));
  $(".solo", el).setAttribute("aria-pressed", String(strip.solo));
  el.classList.toggle("silent", !audible(strip));
}

export function applyAll() { for (const s of mixer.strips) applyStrip(s); changed(); }

export function setMasterGain(db) {
  $("#master-gain").value = db;
  $("#master-gain-out").textContent = fmtDb(db);
  if (mixer.master) setParam(mixer.master.gain, dbToGain(db));
}

export const masterGainDb = () => Number($("#master-gain").value);
