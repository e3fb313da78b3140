// Play while separating: the stems arrive as time-ordered segments of raw float32 (streamload.js reads them),
// copied straight into full-length AudioBuffers (nothing to decode). While the song is still being
// separated, the mixer plays the part that is separated (`mixer.until`, seconds): each new segment is scheduled
// gaplessly on the AudioContext clock after the sources already playing; if the playhead reaches the end of the
// separated part (a seek forward, a slow CPU) playback waits at that point with a "separating…" marker and
// resumes by itself once a little more is there. A finished song loads through the same segments, all at once.
import { $, fmtTime, getJson, setStatus } from "./api.js";
import { changed, looping, mixer, playing, position } from "./state.js";
import { startAt, stop, togglePlay } from "./transport.js";
import { refreshCompare } from "./compare.js";
import { adopt, firstIndex, loadAll, loadNext, POLL_MS, refreshIndex, sleep, stream } from "./streamload.js";

const RESUME_AHEAD_S = 1.0; // a wait ends when this much past the waiting point is separated (or all of it)
const AUDIBLE_RMS = 1e-4; // the master is "sounding" above this RMS (the first-sound figure of the benchmark)
// controls that need the finished stems on the server: enabled again when the separation ends
const NEEDS_STEMS = "#export, #download-zip, #download-ni, #save-mix, #compare, #strips .download";
const WAIT_NOTE = "available when the separation has finished";

function needStems(waiting) {
  for (const el of document.querySelectorAll(NEEDS_STEMS)) {
    if (el.classList.contains("needs-stems") === waiting) continue;
    el.classList.toggle("needs-stems", waiting);
    if ("disabled" in el && el.tagName !== "A") el.disabled = waiting;
    else if (waiting) el.setAttribute("aria-disabled", "true"); else el.removeAttribute("aria-disabled");
    if (waiting) { el.dataset.title = el.title; el.title = WAIT_NOTE; } else if ("title" in el.dataset) el.title = el.dataset.title;
  }
}

// The buffers, names and peaks for openMixer: all of a finished song, or the first seconds of one being separated.
export async function loadStems(songId, ctx) {
  closeStream();
  const token = stream.token;
  stream.songId = songId;
  stream.openedAt = Date.now();
  stream.firstSoundAt = null; stream.separatedAt = null; stream.stalls = 0; stream.waiting = false; stream.extent = 0;
  const index = await firstIndex(songId, token);
  adopt(index);
  if (stream.done) await refreshIndex(); // a long song's index comes in pages
  stream.frames = Math.max(1, index.frames);
  stream.buffers = stream.stems.map(() => ctx.createBuffer(stream.channels, stream.frames, stream.rate));
  if (stream.done) {
    await loadAll(token);
  } else {
    await loadNext();
  }
  const peaks = stream.done ? (await getJson(`/api/songs/${songId}/peaks`)).stems : null;
  mixer.until = stream.done ? null : stream.extent / stream.rate;
  return { names: stream.stems, buffers: stream.buffers, peaks };
}

// After openMixer: keep loading while the song is separated, and watch the playhead against the separated end.
export function followStream() {
  const token = stream.token;
  clearInterval(stream.watch);
  stream.watch = setInterval(watch, 40);
  showProgress();
  // a dropped song plays as it opens, also when it was separated before the mixer could open (a short song)
  const play = stream.autoplay && !mixer.playing;
  stream.autoplay = false;
  if (stream.done) {
    stream.separatedAt = stream.separatedAt || Date.now();
    if (play) togglePlay();
    return;
  }
  needStems(true);
  setStatus("separating: the mixer plays what is separated; exports wait for the end");
  if (play) togglePlay();
  pump(token).catch((e) => {
    if (token !== stream.token) return;
    setStatus(e.message);
    $("#separating").classList.add("hidden");
  });
}

async function pump(token) {
  while (token === stream.token) {
    const before = stream.extent;
    if (!(stream.extent < stream.frames && await loadNext())) {
      if (stream.done && stream.extent >= Math.min(stream.frames, lastFrame())) break;
      await sleep(POLL_MS);
      if (token !== stream.token) return;
      await refreshIndex();
    }
    if (token !== stream.token) return;
    if (stream.extent > before) grow();
  }
  finish();
}

const lastFrame = () => (stream.segments.length ? stream.segments.at(-1)[0] + stream.segments.at(-1)[1] : 0);

// More is separated: schedule it after what plays (gapless: the same context clock), redraw, end a wait.
function grow() {
  const whole = stream.extent >= stream.frames;
  const until = whole ? mixer.duration : stream.extent / stream.rate;
  const from = mixer.scheduledTo;
  mixer.until = whole ? null : until;
  if (mixer.playing && !looping() && from !== null && until > from) {
    const ctx = mixer.ctx;
    const when = mixer.startCtxTime + (from - mixer.startOffset) / mixer.speed;
    if (when <= ctx.currentTime + 0.005) { // the scheduled audio ran out before this came: go on where it did
      stream.stalls += 1;
      startAt(from);
    } else {
      for (const s of mixer.strips) {
        const src = ctx.createBufferSource();
        src.buffer = playing(s);
        src.playbackRate.value = mixer.speed;
        src.connect(s.input);
        src.start(when, from, whole ? undefined : until - from);
        mixer.sources.push(src);
      }
      const last = mixer.sources.at(-1);
      if (whole) last.onended = () => { if (mixer.sources.includes(last) && mixer.playing && !mixer.loop.on) stop(0); };
      mixer.scheduledTo = whole ? null : until;
    }
  }
  for (const s of mixer.strips) s.image = null;
  mixer.masterImage = null;
  showProgress();
  changed();
  if (stream.waiting && (whole || until >= stream.waitAt + RESUME_AHEAD_S)) resume();
}

function finish() {
  stream.done = true;
  stream.separatedAt = stream.separatedAt || Date.now();
  mixer.until = null;
  refreshCompare().catch(() => {}); // the finished job is now the mixer's: Compare leaves it out of its list
  needStems(false);
  setStatus("separated: exports are ready");
  if (stream.waiting) resume();
  showProgress();
  // the analysis of the stems follows the job (practice.js shows it; imported lazily: it imports the transport)
  import("./practice.js").then((m) => m.showAnalysis(stream.songId)).catch(() => {});
}

function resume() {
  stream.waiting = false;
  $("#separating").classList.add("hidden");
  startAt(stream.waitAt);
}

// Each 40 ms: a playhead at the separated end waits there; the first non-silent output is noted.
function watch() {
  if (!mixer.ctx) return;
  if (mixer.playing && mixer.until !== null && !looping()) {
    const pos = position();
    if (pos >= mixer.until - 0.02) {
      stream.waitAt = Math.min(mixer.duration, Math.max(mixer.until, mixer.startOffset));
      stream.waiting = true;
      stream.stalls += 1;
      stop(stream.waitAt);
      $("#separating").classList.remove("hidden");
    }
  }
  if (stream.firstSoundAt === null && mixer.playing && mixer.masterMeter && mixer.ctx.currentTime > mixer.startCtxTime) {
    const d = new Float32Array(mixer.masterMeter.analyser.fftSize);
    mixer.masterMeter.analyser.getFloatTimeDomainData(d);
    let sum = 0;
    for (const v of d) sum += v * v;
    if (Math.sqrt(sum / d.length) > AUDIBLE_RMS) stream.firstSoundAt = Date.now();
  }
}

function showProgress() {
  const el = $("#separated");
  if (!el) return;
  el.classList.toggle("hidden", stream.done);
  el.textContent = stream.done ? "" : `separated ${fmtTime(stream.extent / (stream.rate || 1))} of ${fmtTime(mixer.duration)}`;
}

// Leaving the mixer: stop loading and watching (a pending request's answer is dropped).
export function closeStream() {
  stream.token += 1;
  clearInterval(stream.watch);
  stream.waiting = false;
  stream.buffers = [];
  mixer.until = null;
  const el = $("#separating");
  if (el) el.classList.add("hidden");
  needStems(false);
}

// The library: a song uploaded from this tab opens in the mixer as soon as its first seconds are separated.
export function openWhenSeparated(songId) { stream.pendingOpen = songId; stream.uploadedAt = Date.now(); }
// Back in the library before that: the person chose where to be, so nothing opens or plays by itself later.
export function cancelAutoOpen() { stream.pendingOpen = null; stream.autoplay = false; }
export function onJobUpdate(song, job) {
  // a short song can be done before any update said how much was separated
  const ready = job.separated_s > 0 || job.status === "done";
  if (song.id !== stream.pendingOpen || !ready || location.hash.startsWith("#/song/")) return;
  stream.pendingOpen = null;
  stream.autoplay = true;
  location.hash = `#/song/${song.id}`;
}

// For the façade (window.studio.state().stream) and the benchmark.
export function streamState() {
  return { done: stream.done, extent: stream.extent / (stream.rate || 1), frames: stream.frames, until: mixer.until,
    waiting: stream.waiting, stalls: stream.stalls, segments: stream.segments.length, openedAt: stream.openedAt,
    uploadedAt: stream.uploadedAt, firstSoundAt: stream.firstSoundAt, separatedAt: stream.separatedAt };
}
