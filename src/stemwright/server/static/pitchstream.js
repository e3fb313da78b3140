// SoundTouch (vendor/soundtouchjs, LGPL-2.1) in pitch-only mode as a stream with a fixed delay: output frame k is
// the pitch-shifted input frame k - LATENCY_FRAMES (silence before). SoundTouch itself holds back up to ~6,600
// frames depending on the factor (measured for factors 1/3…4 in 128-frame blocks); a fixed delay above that keeps
// the output gapless and makes the delay known, so the metronome can be delayed by as much. Used by the live
// AudioWorklet (pitch-worklet.js) and by the offline render the tests measure (timepitch.js): one code path.
// No DOM here: this runs in the AudioWorkletGlobalScope too.
import { SoundTouch } from "./vendor/soundtouchjs/soundtouch.js";

export const LATENCY_FRAMES = 8192;

export class PitchStream {
  constructor(pitch = 1, latency = LATENCY_FRAMES) {
    this.st = new SoundTouch();
    this.st.pitch = pitch;
    this.latency = latency;
    this.emitted = 0; // output frames so far
    this.scratch = new Float32Array(0);
  }

  set pitch(factor) { this.st.pitch = factor; }

  // Feed one stereo block (Float32Arrays of equal length n) and write n output frames.
  process(inL, inR, outL, outR) {
    const n = inL.length;
    if (this.scratch.length < 2 * n) this.scratch = new Float32Array(2 * n);
    const inter = this.scratch.subarray(0, 2 * n);
    for (let i = 0; i < n; i++) { inter[2 * i] = inL[i]; inter[2 * i + 1] = inR[i]; }
    this.st.inputBuffer.putSamples(inter, 0, n);
    this.st.process();
    const lead = Math.min(n, Math.max(0, this.latency - this.emitted)); // still within the fixed delay
    const have = Math.min(n - lead, this.st.outputBuffer.frameCount);
    outL.fill(0); outR.fill(0);
    if (have > 0) {
      this.st.outputBuffer.receiveSamples(inter, have);
      for (let i = 0; i < have; i++) { outL[lead + i] = inter[2 * i]; outR[lead + i] = inter[2 * i + 1]; }
    }
    this.emitted += n;
  }
}
