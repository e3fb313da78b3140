// The mixer's keyboard: Space plays/pauses, Ctrl+Z / Ctrl+Shift+Z (Ctrl+Y) undo/redo, M/S mute/solo the focused
// strip, and the beat grid: arrows seek by a beat, shift+arrows by a bar, [ ] set the loop in/out on the nearest
// beat, L loop on/off, Home to the start. Without an analysis (yet) arrows step 1 s (shift: 4 s).
// None of them fires while a form control has focus: there keys keep their usual meaning (Space ticks a checkbox,
// arrows move a slider, letters go into the mix name).
import { $ } from "./api.js";
import { applyAll } from "./graph.js";
import { stepHistory } from "./mixdoc.js";
import { changed, gridBpm, mixer, position, snapToBeat } from "./state.js";
import { seek, startAt, togglePlay } from "./transport.js";
import { showLoop } from "./waveform.js";

// Is the user typing, or working a form control (text field, checkbox, slider, menu)?
export function isFormControl(el) {
  if (!el || !el.tagName) return false;
  return ["input", "select", "textarea"].includes(el.tagName.toLowerCase()) || el.isContentEditable;
}

const mixerShown = () => !$("#mixer-view").classList.contains("hidden");
const spaceIsTransport = (e) => e.key === " " && mixerShown() && !isFormControl(e.target);

function toggleLoop() {
  const box = $("#loop");
  box.checked = !box.checked;
  box.dispatchEvent(new Event("change"));
}

function stepOnGrid(e) {
  const a = mixer.analysis;
  const dir = e.key === "ArrowRight" ? 1 : -1;
  const grid = a ? (e.shiftKey ? a.downbeats : a.beats) : null;
  const pos = position();
  if (!grid || !grid.length) { seek(pos + dir * (e.shiftKey ? 4 : 1)); return; }
  const eps = 0.02; // a press right after a seek lands a few ms past the beat: still "on" it
  const next = dir > 0 ? grid.find((t) => t > pos + eps) : [...grid].reverse().find((t) => t < pos - eps);
  seek(next === undefined ? (dir > 0 ? mixer.duration : 0) : next);
}

function setLoopEdge(key) {
  const a = mixer.analysis;
  const pos = snapToBeat(position());
  const bar = a ? (a.beats_per_bar * 60) / gridBpm(a) : 2;
  const loop = mixer.loop;
  if (key === "[") { loop.start = pos; if (loop.end <= loop.start) loop.end = Math.min(mixer.duration, pos + bar); }
  else { loop.end = pos; if (loop.end <= loop.start) loop.start = Math.max(0, pos - bar); }
  if (mixer.playing && loop.on) startAt(position());
  showLoop();
  changed();
}

// One key of the mixer's shortcuts (no modifier but shift); says whether it was one.
function mixerKey(e) {
  if (e.key === "ArrowLeft" || e.key === "ArrowRight") stepOnGrid(e);
  else if (e.key === "Home") seek(0);
  else if (e.key === "l" || e.key === "L") toggleLoop();
  else if (e.key === "[" || e.key === "]") setLoopEdge(e.key);
  else if ((e.key === "m" || e.key === "M") && mixer.focused) { mixer.focused.mute = !mixer.focused.mute; applyAll(); }
  else if ((e.key === "s" || e.key === "S") && mixer.focused) { mixer.focused.solo = !mixer.focused.solo; applyAll(); }
  else return false;
  return true;
}

export function setupKeys() {
  // A focused button would also "click" on Space's keyup, toggling twice: swallow that default.
  document.addEventListener("keyup", (e) => { if (spaceIsTransport(e)) e.preventDefault(); });
  document.addEventListener("keydown", (e) => {
    if (!mixerShown() || isFormControl(e.target) || e.altKey) return;
    if (e.key === " ") { e.preventDefault(); if (!e.repeat) togglePlay(); return; }
    if (e.ctrlKey || e.metaKey) {
      if (e.key === "z" || e.key === "Z" || e.key === "y") { e.preventDefault(); stepHistory(e.key === "z" && !e.shiftKey); }
      return;
    }
    if (mixerKey(e)) e.preventDefault();
  });
}
