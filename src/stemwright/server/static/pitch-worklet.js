// The live pitch shifter on the audio thread (AudioWorklet; it replaced the deprecated ScriptProcessorNode):
// stereo in, stereo out, delayed by LATENCY_FRAMES. The page sets the factor with port.postMessage({ pitch }).
import { PitchStream } from "./pitchstream.js";

class PitchShifter extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.stream = new PitchStream((options.processorOptions || {}).pitch || 1);
    this.silence = new Float32Array(128);
    this.port.onmessage = (e) => { this.stream.pitch = e.data.pitch; };
  }

  process(inputs, outputs) {
    const input = inputs[0] || [], output = outputs[0];
    const n = output[0].length;
    if (this.silence.length !== n) this.silence = new Float32Array(n);
    const left = input[0] || this.silence, right = input[1] || left;
    this.stream.process(left, right, output[0], output[1] || new Float32Array(n));
    return true;
  }
}

registerProcessor("pitch-shifter", PitchShifter);
