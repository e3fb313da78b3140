// The transport: play, pause, seek, loop playback, the end of the song, speed/transpose changes while playing,
// and the metronome (count-in and clicks on the analysed beats).
import { $ } from "./api.js";
import { audioContext } from "./graph.js";
import { changed, effectiveOffset, gridBpm, looping, mixer, playing, position } from "./state.js";
import { routePitch, shifterDelay, showTimePitch } from "./timepitch.js";

export function stopSources() {
  // Detach onended first: a stopped source fires it asynchronously, which must not end the *new* playback.
  for (const src of mixer.sources) { src.onended = null; try { src.stop(); } catch { /* already stopped */ } src.disconnect(); }
  mixer.sources = [];
}

function startSource(ctx, buffer, destination, when, offset, duration) {
  const { on, start, end } = mixer.loop;
  const src = ctx.createBufferSource();
  src.buffer = buffer;
  src.playbackRate.value = mixer.speed;
  if (on && end > start) { src.loop = true; src.loopStart = start; src.loopEnd = end; }
  src.connect(destination);
  src.start(when, offset, duration);
  mixer.sources.push(src);
}

export function startAt(offset, countIn = false) {
  const ctx = audioContext();
  stopSources();
  offset = effectiveOffset(offset);
  let when = ctx.currentTime + 0.05; // one start time for every stem: sample-synchronous
  const a = mixer.analysis;
  if (countIn && a && $("#count-in").checked) {
    // one bar of clicks at the song's tempo before the song starts, the first accented
    const beat = 60 / gridBpm(a) / mixer.speed; // at the playing speed
    for (let k = 0; k < a.beats_per_bar; k++) click(when + k * beat, k === 0);
    when += a.beats_per_bar * beat;
  }
  // while the song is separated, the stems play up to the separated end (progressive.js schedules the rest)
  const limit = looping() || mixer.until === null ? undefined : Math.max(0, mixer.until - offset);
  mixer.scheduledTo = limit === undefined ? null : mixer.until;
  for (const s of mixer.strips) startSource(ctx, playing(s), s.input, when, offset, limit);
  // the original song, started with the stems: A/B switches at the same position
  if (mixer.original) startSource(ctx, mixer.original.buffer, mixer.original.gain, when, offset);
  const first = mixer.sources[0];
  if (limit === undefined) first.onended = () => { if (mixer.sources[0] === first && mixer.playing && !mixer.loop.on) stop(0); };
  mixer.startCtxTime = when;
  mixer.clickedUntil = when - 0.01;
  mixer.startOffset = offset;
  mixer.playing = true;
  updatePlayButton();
  changed();
}

// Stop at `at` seconds of song time. At the song's end this resets the playhead to the start; the next frame
// redraws the clock and reads the meters as silence.
export function stop(at) {
  mixer.startOffset = at;
  mixer.playing = false;
  stopSources();
  updatePlayButton();
  changed();
}

export async function togglePlay() {
  const ctx = audioContext();
  if (ctx.state === "suspended") await ctx.resume();
  if (mixer.playing) stop(position());
  else startAt(mixer.startOffset >= mixer.duration ? 0 : mixer.startOffset, true);
}

export function seek(t) {
  t = Math.max(0, Math.min(mixer.duration, t));
  if (mixer.playing) startAt(t); else { mixer.startOffset = effectiveOffset(t); changed(); }
}

function updatePlayButton() {
  const b = $("#play");
  b.textContent = mixer.playing ? "❚❚" : "▶";
  b.setAttribute("aria-label", mixer.playing ? "Pause" : "Play");
}

// Speed in [0.5, 1.5] and transpose in whole semitones [-12, 12] (the mix document's ranges). While playing, the
// sources restart at the new rate from the current position (the transport clock then runs at the new speed).
export function setTimePitch(speed, semitones) {
  speed = Math.min(1.5, Math.max(0.5, Number.isFinite(speed) ? speed : 1));
  semitones = Math.min(12, Math.max(-12, Math.round(Number.isFinite(semitones) ? semitones : 0)));
  const pos = mixer.playing ? position() : null;
  const changedSpeed = speed !== mixer.speed;
  mixer.speed = speed; mixer.semitones = semitones;
  showTimePitch();
  routePitch();
  if (pos !== null && changedSpeed) startAt(pos);
}

// -- metronome: a short blip into the master (so the meters and exports of the page hear it), 1.5 kHz on a
// downbeat and 1 kHz on other beats. While playing, each frame schedules the clicks of the next 150 ms. `at` is
// the beat's time on the context clock; the click sounds `shifterDelay()` later, when the mix is heard through
// the pitch shifter's fixed delay.
function click(at, accent) {
  const ctx = mixer.ctx;
  const heard = at + shifterDelay();
  const osc = ctx.createOscillator();
  const env = ctx.createGain();
  osc.frequency.value = accent ? 1500 : 1000;
  env.gain.setValueAtTime(0, heard);
  env.gain.linearRampToValueAtTime(0.5, heard + 0.002);
  env.gain.exponentialRampToValueAtTime(0.001, heard + 0.05);
  osc.connect(env); env.connect(mixer.master);
  osc.start(heard); osc.stop(heard + 0.06);
  mixer.clicks.push({ at, heard, accent });
  if (mixer.clicks.length > 64) mixer.clicks.shift();
}

export function scheduleMetronome() {
  const a = mixer.analysis;
  if (!mixer.playing || !a || !$("#metronome").checked) return;
  const now = Math.max(mixer.ctx.currentTime, mixer.startCtxTime); // the context time of position()
  const pos = position();
  const speed = mixer.speed;
  const ahead = 0.15 * speed; // 150 ms of context time, in song time
  // [song time from, song time to, context time of "from"]; a loop's end continues at its start
  const spans = [[pos, pos + ahead, now]];
  if (looping() && pos + ahead > mixer.loop.end) {
    spans[0][1] = mixer.loop.end;
    spans.push([mixer.loop.start, mixer.loop.start + (pos + ahead - mixer.loop.end), now + (mixer.loop.end - pos) / speed]);
  }
  const downs = new Set(a.downbeats.map((t) => t.toFixed(3)));
  for (const [from, to, base] of spans) {
    for (const t of a.beats) {
      if (t < from - 1e-3 || t >= to) continue;
      const at = base + (t - from) / speed;
      if (at <= mixer.clickedUntil + 1e-3) continue; // already scheduled on an earlier frame
      click(at, downs.has(t.toFixed(3)));
      mixer.clickedUntil = at;
    }
  }
}
