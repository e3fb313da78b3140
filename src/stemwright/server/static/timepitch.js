// Speed and transpose. Every source plays at playbackRate = speed (transport.js); one pitch shifter after the mix
// bus (SoundTouch in pitch-only mode, pitchstream.js, on the audio thread in pitch-worklet.js) moves the pitch by
// 2^(semitones/12) / speed, which undoes the rate's pitch change and adds the transpose.
import { $ } from "./api.js";
import { PITCH_NAMES } from "./chords.js";
import { LATENCY_FRAMES, PitchStream } from "./pitchstream.js";
import { mixer } from "./state.js";

const BLOCK = 2048; // frames per step of the offline render

export function pitchFactor(speed = mixer.speed, semitones = mixer.semitones) { return Math.pow(2, semitones / 12) / speed; }

// Load the worklet's module once per AudioContext; routePitch waits for it (the mix plays unshifted meanwhile,
// a few milliseconds after the context is made).
export function loadPitchWorklet(ctx) {
  mixer.pitchReady = ctx.audioWorklet.addModule("/static/pitch-worklet.js").then(() => ctx);
  mixer.pitchReady.then((loaded) => { if (loaded === mixer.ctx) routePitch(); }).catch(() => { /* no worklet: unshifted */ });
}

const shifting = () => Math.abs(pitchFactor() - 1) >= 1e-9;

// Connect the mix (pitchIn) to the master directly at 100 % and 0 st (bit-exact, no latency), else through the
// shifter; a new factor is posted to the running shifter, so a change is heard on its next block.
export function routePitch() {
  const ctx = mixer.ctx;
  if (!ctx || !mixer.pitchIn) return;
  const factor = pitchFactor();
  mixer.pitchIn.disconnect();
  if (!shifting()) { mixer.pitchIn.connect(mixer.master); return; }
  if (!mixer.pitchNode) {
    let node;
    try {
      node = new AudioWorkletNode(ctx, "pitch-shifter", { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [2],
        processorOptions: { pitch: factor } });
    } catch { mixer.pitchIn.connect(mixer.master); return; } // the module is still loading: unshifted until then
    node.connect(mixer.master);
    mixer.pitchNode = { node, factor };
  }
  mixer.pitchNode.factor = factor;
  mixer.pitchNode.node.port.postMessage({ pitch: factor });
  mixer.pitchIn.connect(mixer.pitchNode.node);
}

// Seconds the shifter delays the mix now (0 when it is bypassed): the metronome's clicks wait as long.
export function shifterDelay() {
  return mixer.ctx && mixer.pitchNode && shifting() ? LATENCY_FRAMES / mixer.ctx.sampleRate : 0;
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
  el.textContent = ` → ${PITCH_NAMES[(a.key_tonic + semitones + 120) % 12]} ${a.key_mode}`;
}

// What the page plays at `speed`/`semitones` for the given channels (Float32 arrays at `rate`): an
// OfflineAudioContext plays them at playbackRate = speed (length / speed), then the same pitch stream as live
// playback, its fixed delay taken off.
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
  // the stream delays by LATENCY_FRAMES: feed silence after the end until that much more is out, then cut it off
  const stream = new PitchStream(factor);
  const total = LATENCY_FRAMES + length;
  const outL = new Float32Array(Math.ceil(total / BLOCK) * BLOCK), outR = new Float32Array(outL.length);
  for (let at = 0; at < total; at += BLOCK) {
    const inL = new Float32Array(BLOCK), inR = new Float32Array(BLOCK);
    if (at < length) { inL.set(L.subarray(at, at + BLOCK)); inR.set(R.subarray(at, at + BLOCK)); }
    stream.process(inL, inR, outL.subarray(at, at + BLOCK), outR.subarray(at, at + BLOCK));
  }
  return [outL.slice(LATENCY_FRAMES, total), outR.slice(LATENCY_FRAMES, total)];
}
