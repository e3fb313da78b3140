// Speed and transpose. Every source plays at playbackRate = speed (transport.js); one SoundTouch pitch shifter
// (vendor/soundtouchjs, LGPL-2.1) after the mix bus, in pitch-only mode, moves the pitch by
// 2^(semitones/12) / speed, which undoes the rate's pitch change and adds the transpose.
import { SoundTouch } from "./vendor/soundtouchjs/soundtouch.js";
import { $ } from "./api.js";
import { mixer } from "./state.js";

const PITCH_BLOCK = 2048; // ScriptProcessor block: 46 ms at 44.1 kHz, so a change is heard well within a second

export function pitchFactor(speed = mixer.speed, semitones = mixer.semitones) { return Math.pow(2, semitones / 12) / speed; }

// Push one stereo block through SoundTouch and take the same number of frames out (zeros until it has output).
// Shared by the live node and renderTimePitch, so the tests measure the code that plays.
function pitchBlock(st, inL, inR, outL, outR) {
  const n = inL.length;
  const inter = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) { inter[2 * i] = inL[i]; inter[2 * i + 1] = inR[i]; }
  st.inputBuffer.putSamples(inter, 0, n);
  st.process();
  const have = Math.min(n, st.outputBuffer.frameCount);
  const out = new Float32Array(2 * n);
  if (have > 0) st.outputBuffer.receiveSamples(out, have);
  const lead = n - have; // an underrun (only while SoundTouch fills up) is padded at the front
  outL.fill(0, 0, lead); outR.fill(0, 0, lead);
  for (let i = 0; i < have; i++) { outL[lead + i] = out[2 * i]; outR[lead + i] = out[2 * i + 1]; }
  return lead;
}

// Connect the mix (pitchIn) to the master directly at 100 % and 0 st (bit-exact, no latency), else through the
// SoundTouch node; a new factor is set on the running shifter, so a change is heard on its next block.
export function routePitch() {
  const ctx = mixer.ctx;
  if (!ctx || !mixer.pitchIn) return;
  const factor = pitchFactor();
  mixer.pitchIn.disconnect();
  if (Math.abs(factor - 1) < 1e-9) { mixer.pitchIn.connect(mixer.master); return; }
  if (!mixer.pitchNode) {
    const node = ctx.createScriptProcessor(PITCH_BLOCK, 2, 2);
    const st = new SoundTouch();
    node.onaudioprocess = (e) => {
      const i = e.inputBuffer, o = e.outputBuffer;
      pitchBlock(st, i.getChannelData(0), i.getChannelData(i.numberOfChannels > 1 ? 1 : 0), o.getChannelData(0), o.getChannelData(1));
    };
    node.connect(mixer.master);
    mixer.pitchNode = { node, st };
  }
  mixer.pitchNode.st.pitch = factor;
  mixer.pitchIn.connect(mixer.pitchNode.node);
}

// The speed and transpose controls, and the key as transposed next to the analysed one.
export function showTimePitch() {
  const { speed, semitones } = mixer;
  $("#speed").value = String(Math.round(speed * 100));
  $("#speed-out").textContent = `${Math.round(speed * 100)} %`;
  $("#transpose").value = String(semitones);
  $("#transpose-out").textContent = `${semitones > 0 ? "+" : semitones < 0 ? "−" : "±"}${Math.abs(semitones)} st`;
  const el = $("#analysis-key");
  const a = mixer.analysis;
  if (!a || !semitones) { el.textContent = ""; return; }
  const names = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
  el.textContent = ` → ${names[(a.key_tonic + semitones + 120) % 12]} ${a.key_mode}`;
}

// What the page plays at `speed`/`semitones` for the given channels (Float32 arrays at `rate`): an
// OfflineAudioContext plays them at playbackRate = speed (length / speed), then the same SoundTouch pitch shifter
// as live playback. The shifter's start-up delay is taken off by feeding silence after the end.
export async function renderTimePitch(channels, rate, speed = mixer.speed, semitones = mixer.semitones) {
  const inLength = channels[0].length;
  const length = Math.round(inLength / speed);
  const off = new OfflineAudioContext(2, length, rate);
  const buf = off.createBuffer(channels.length, inLength, rate);
  channels.forEach((c, i) => buf.copyToChannel(c instanceof Float32Array ? c : Float32Array.from(c), i));
  const src = off.createBufferSource();
  src.buffer = buf; src.playbackRate.value = speed;
  src.connect(off.destination); src.start(0);
  const played = await off.startRendering();
  const L = played.getChannelData(0), R = played.getChannelData(1);
  const factor = pitchFactor(speed, semitones);
  if (Math.abs(factor - 1) < 1e-9) return [L, R];
  const st = new SoundTouch();
  st.pitch = factor;
  // the zeros pitchBlock pads while SoundTouch fills up are its delay; feed silence until that much more is out
  let delay = 0;
  const outL = [], outR = [];
  for (let at = 0; at < length + delay + PITCH_BLOCK; at += PITCH_BLOCK) {
    const inL = new Float32Array(PITCH_BLOCK), inR = new Float32Array(PITCH_BLOCK);
    if (at < length) { inL.set(L.subarray(at, at + PITCH_BLOCK)); inR.set(R.subarray(at, at + PITCH_BLOCK)); }
    const oL = new Float32Array(PITCH_BLOCK), oR = new Float32Array(PITCH_BLOCK);
    delay += pitchBlock(st, inL, inR, oL, oR);
    outL.push(oL); outR.push(oR);
  }
  const join = (parts) => { const a = new Float32Array(parts.length * PITCH_BLOCK); parts.forEach((p, k) => a.set(p, k * PITCH_BLOCK)); return a; };
  return [join(outL).slice(delay, delay + length), join(outR).slice(delay, delay + length)];
}
