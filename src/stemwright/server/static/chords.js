// The chord lane under the ruler: the analysed chords (analysis.chords, Harte labels such as "A:min7"; "N" is no
// chord) named as musicians write them ("Am7") and transposed with the transpose control, as the key beside it is.
// Drawn in the ruler's view (zoom, scroll); what is shown is kept in mixer.chordLabels (the test façade reads it).
import { $ } from "./api.js";
import { mixer } from "./state.js";

export const PITCH_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
const FLATS = { Db: 1, Eb: 3, Gb: 6, Ab: 8, Bb: 10 };
// the short names of stemwright.analysis.harmony.SHORT
const SHORT = { maj: "", min: "m", 7: "7", maj7: "maj7", min7: "m7", sus4: "sus4", sus2: "sus2", dim: "dim" };
const MAX_ARIA = 24; // chords read out in the lane's accessible name (the rest: "…")

// "A:min7" moved by `semitones` -> "Bm7" (two up); "N" stays "N"; a label it does not know is shown as it is.
export function chordName(label, semitones = 0) {
  if (label === "N") return "N";
  const [root, quality = "maj"] = label.split(":");
  const pc = PITCH_NAMES.includes(root) ? PITCH_NAMES.indexOf(root) : FLATS[root];
  if (pc === undefined) return label;
  return PITCH_NAMES[(((pc + semitones) % 12) + 12) % 12] + (SHORT[quality] ?? quality);
}

// Draw the chords between `start` and `end` seconds; `viewX(t, width)` is the ruler's time -> pixel mapping.
export function drawChordLane(viewX, start, end) {
  const canvas = $("#chord-lane");
  if (!canvas) return;
  const dpr = devicePixelRatio;
  const w = (canvas.width = Math.max(100, Math.floor(canvas.clientWidth * dpr)));
  const h = (canvas.height = Math.floor(20 * dpr));
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, h);
  g.font = `${11 * dpr}px sans-serif`;
  const chords = (mixer.analysis && mixer.analysis.chords) || [];
  const shown = [];
  for (const c of chords) {
    if (c.label === "N" || c.end <= start || c.start >= end) continue;
    const x0 = Math.max(0, viewX(c.start, w)), x1 = Math.min(w, viewX(c.end, w));
    g.fillStyle = "#1f2937";
    g.fillRect(x0, 2 * dpr, Math.max(1, x1 - x0 - dpr), h - 4 * dpr);
    const name = chordName(c.label, mixer.semitones);
    g.save(); // each name is cut at its chord's end: a short chord never hides the next one's name
    g.beginPath();
    g.rect(x0, 0, Math.max(0, x1 - x0 - dpr), h);
    g.clip();
    g.fillStyle = "#e5e7eb";
    g.fillText(name, x0 + 3 * dpr, h * 0.72);
    g.restore();
    shown.push({ t: c.start, name });
  }
  mixer.chordLabels = shown;
  const names = shown.slice(0, MAX_ARIA).map((s) => s.name).join(", ");
  canvas.setAttribute("aria-label", shown.length
    ? `chords: ${names}${shown.length > MAX_ARIA ? ", …" : ""}` : "chords: none analysed yet");
}
