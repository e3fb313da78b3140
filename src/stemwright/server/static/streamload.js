// The stems of the song in the mixer as the server serves them: the index of time-ordered segments of raw float32
// (GET /api/songs/ID/stream) and each segment (/stream/K), copied straight into full-length AudioBuffers. While the
// song is separated the index grows; when the separation ends the finished stems replace the running job's
// segments (another grid: the index is read again). progressive.js plays what this has loaded.
import { $, api, getJson } from "./api.js";

export const POLL_MS = 250; // how often a separating song's index is asked for new segments

// What the page knows of the song's segments; `extent`: frames loaded from the start, without a gap.
export const stream = {
  songId: null, jobId: null, done: true, stems: [], channels: 0, rate: 0, frames: 0, segments: [], count: 0,
  extent: 0, buffers: [], waiting: false, waitAt: 0, stalls: 0, timer: 0, watch: 0, token: 0,
  openedAt: 0, uploadedAt: null, firstSoundAt: null, separatedAt: null, autoplay: false, pendingOpen: null,
};

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The index of the song's segments, from segment `first` (409: nothing separated yet).
async function fetchIndex(songId, first = 0) {
  const res = await fetch(`/api/songs/${songId}/stream?first=${first}`);
  if (res.status === 409) return null;
  if (!res.ok) throw new Error(`could not read the song's stems (${res.status})`);
  return res.json();
}

// Wait for the first segment of a song being separated; throws when the song has no job that will give one.
export async function firstIndex(songId, token) {
  for (;;) {
    const index = await fetchIndex(songId);
    if (token !== stream.token) throw new Error("closed");
    if (index && index.count > 0) return index;
    if (!index) {
      const song = await getJson(`/api/songs/${songId}`);
      if (!["queued", "running"].includes(song.status)) throw new Error(`no stems: the separation is ${song.status}`);
    }
    $("#loading").textContent = "Separating the first seconds…";
    await sleep(POLL_MS);
  }
}

export function adopt(index) {
  Object.assign(stream, { jobId: index.job_id, done: index.done, stems: index.stems, channels: index.channels,
    rate: index.samplerate, count: index.count, segments: index.segments.slice() });
}

// Read the new part of the index (pages of 512); a switch from the running job's segments to the finished stems'
// starts the list again (they lie on another grid).
export async function refreshIndex() {
  let index = await fetchIndex(stream.songId, stream.segments.length);
  if (index && (index.job_id !== stream.jobId || index.done !== stream.done)) {
    stream.segments = []; stream.jobId = index.job_id; stream.done = index.done;
    index = await fetchIndex(stream.songId, 0);
  }
  if (!index) throw new Error("the separation ended without stems");
  stream.count = index.count;
  stream.segments.push(...index.segments);
  while (stream.segments.length < index.count) {
    index = await fetchIndex(stream.songId, stream.segments.length);
    if (!index || !index.segments.length) break;
    stream.segments.push(...index.segments);
  }
}

// Copy the segment holding frame `stream.extent` into the buffers; false when the index has none yet.
export async function loadNext() {
  const k = stream.segments.findIndex(([start, n]) => start <= stream.extent && stream.extent < start + n);
  if (k < 0) return false;
  const [start, frames] = stream.segments[k];
  let res;
  try {
    res = await api(`/api/songs/${stream.songId}/stream/${k}?job=${stream.jobId}`);
  } catch (e) {
    // The separation finished meanwhile and its stems have fewer segments than the running job had (a short song:
    // one), so segment k is gone: read the new index and go on; any other failure stands.
    const [job, done] = [stream.jobId, stream.done];
    await refreshIndex();
    if (stream.jobId === job && stream.done === done) throw e;
    return true;
  }
  const data = new Float32Array(await res.arrayBuffer());
  if (Number(res.headers.get("x-start")) !== start || Number(res.headers.get("x-frames")) !== frames) {
    await refreshIndex(); // the separation finished meanwhile: its stems are on another grid
    return true;
  }
  place(data, start, frames, stream.extent - start);
  stream.extent = Math.max(stream.extent, start + frames);
  return true;
}

// Copy frames [from, frames) of a segment starting at frame `start` into the buffers.
function place(data, start, frames, from) {
  const to = Math.min(frames, stream.frames - start); // the expected length may be a few frames short
  if (to <= from) return;
  stream.stems.forEach((_, i) => {
    for (let c = 0; c < stream.channels; c++) {
      const base = (i * stream.channels + c) * frames;
      stream.buffers[i].copyToChannel(data.subarray(base + from, base + to), c, start + from);
    }
  });
}

// A finished song: every segment, a few requests at a time (the server reads one while the page copies another).
export async function loadAll(token) {
  let next = 0;
  const worker = async () => {
    while (next < stream.segments.length && token === stream.token) {
      const k = next++;
      const [start, frames] = stream.segments[k];
      const res = await api(`/api/songs/${stream.songId}/stream/${k}?job=${stream.jobId}`);
      place(new Float32Array(await res.arrayBuffer()), start, frames, 0);
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  if (token !== stream.token) throw new Error("closed");
  stream.extent = stream.frames;
}
