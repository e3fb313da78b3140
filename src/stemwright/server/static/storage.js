// What this browser remembers (localStorage): each song's working state (mix, loop, playhead, mix name) and the
// chosen separation model. Storage may be disabled or full: reads then give nothing and writes are dropped.

const PREFIX = "stemwright.working.";
const MODEL_KEY = "stemwright.model";

function read(key) {
  try { return JSON.parse(localStorage.getItem(key) || "null"); } catch { return null; }
}

function write(key, value) {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* storage disabled or full */ }
}

export const loadWorking = (songId) => read(PREFIX + songId);
export const saveWorking = (songId, state) => write(PREFIX + songId, state);

// Drop the working state of every song not in `songIds` (deleted here or in another tab).
export function pruneWorking(songIds) {
  const keep = new Set(songIds);
  try {
    const stale = [];
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (key.startsWith(PREFIX) && !keep.has(key.slice(PREFIX.length))) stale.push(key);
    }
    for (const key of stale) localStorage.removeItem(key);
  } catch { /* storage disabled */ }
}

export const loadModel = () => read(MODEL_KEY);
export const saveModel = (name) => write(MODEL_KEY, name);
