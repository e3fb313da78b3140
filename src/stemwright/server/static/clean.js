// A strip's "clean" knob: the mix document's debleed(strength) effect (mixer/debleed.py, a Wiener-style re-mask of
// the stem against the sum of the other stems plus a gentle spectral gate). Web Audio cannot compute that re-mask
// sample for sample, so the server renders the cleaned stem exactly as the export does (GET
// /api/songs/ID/stems/NAME/clean?strength=S, steps of 0.05, cached there) and the strip plays that buffer before
// its EQ: what plays is what the export writes. While a new strength loads, the previous cleaned buffer plays.
import { $, api, setStatus } from "./api.js";
import { mixer, position } from "./state.js";
import { startAt } from "./transport.js";

const STEPS = 20; // strength in steps of 1/20 = 0.05 (the server refuses others)
const SETTLE_MS = 250; // a knob drag asks for one render, once it has settled

// A strength in [0, 1] on the knob's steps (0 = off).
export const cleanStrength = (v) => Math.max(0, Math.min(STEPS, Math.round(Number(v) * STEPS || 0))) / STEPS;

// The mix document's effect for the strip's knob, or null when it is off.
export const cleanEffect = (strip) => (strip.clean > 0 ? { type: "debleed", strength: strip.clean } : null);

// Whether the strip plays what its knob says (the test façade and the offline render wait for this).
export const cleanReady = (strip) => !strip.clean || (!!strip.cleaned && strip.cleanedAt === strip.clean);

// The knob moved (or a document set it): show it, and fetch the cleaned stem once the value has settled.
export function setClean(strip, value) {
  strip.clean = cleanStrength(value);
  $(".clean", strip.el).value = strip.clean;
  $(".clean-out", strip.el).textContent = strip.clean ? strip.clean.toFixed(2) : "off";
  clearTimeout(strip.cleanTimer);
  if (!strip.clean) {
    if (strip.cleaned) { strip.cleaned = null; strip.cleanedAt = 0; restart(); }
    return;
  }
  if (cleanReady(strip)) return;
  strip.cleanTimer = setTimeout(() => load(strip, strip.clean), SETTLE_MS);
}

async function load(strip, strength) {
  const songId = mixer.songId;
  setStatus(`cleaning ${strip.name}…`);
  try {
    const url = `/api/songs/${songId}/stems/${encodeURIComponent(strip.name)}/clean?strength=${strength}`;
    const data = await (await api(url)).arrayBuffer();
    const buffer = await mixer.ctx.decodeAudioData(data);
    if (mixer.songId !== songId || strip.clean !== strength) return; // the knob or the song moved on meanwhile
    strip.cleaned = buffer; strip.cleanedAt = strength;
    setStatus(`${strip.name}: cleaned at ${strength.toFixed(2)}`);
    restart();
  } catch (e) {
    if (mixer.songId === songId && strip.clean === strength) setStatus(`could not clean ${strip.name}: ${e.message}`);
  }
}

// The sources restart at the same position so the new buffer is heard at once, in sync (as compare.js does).
function restart() {
  mixer.dirty = true;
  if (mixer.playing) startAt(position());
}
