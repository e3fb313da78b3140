// The server's HTTP API and the few DOM helpers every module uses.

export const $ = (sel, root = document) => root.querySelector(sel);

// fetch() that throws an Error carrying the server's `error` text for any status >= 400.
export async function api(path, opts = {}) {
  const res = await fetch(path, opts);
  if (!res.ok) {
    let msg = `${res.status}`;
    try { msg = (await res.json()).error || msg; } catch { /* not JSON */ }
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  return res;
}

// POST a JSON body.
export const postJson = (path, body) =>
  api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

export const getJson = async (path) => (await api(path)).json();

export const fmtTime = (s) => { s = Math.max(0, s || 0); const m = Math.floor(s / 60); return `${m}:${(s - 60 * m).toFixed(1).padStart(4, "0")}`; };
export const dbToGain = (db) => (db <= -60 ? 0 : Math.pow(10, db / 20));
export const setStatus = (t) => { $("#status").textContent = t; };
