// Practice and output tools: the song's analysis (tempo, meter, key), A/B against the original, "save loop as
// sample" and the export of the mix.
import { $, api, getJson, postJson, setStatus } from "./api.js";
import { setParam } from "./graph.js";
import { mixDocument } from "./mixdoc.js";
import { mixer, position } from "./state.js";
import { showTimePitch } from "./timepitch.js";
import { startAt } from "./transport.js";

const ANALYSIS_RETRY_MS = 3000;

// Tempo, meter and key: computed once per separation on the server (seconds to minutes for a long song), so the
// mixer opens without waiting for it and says "analysing…" until it is there; a busy server (429) is asked again,
// a song whose stems cannot be analysed shows nothing.
export async function showAnalysis(songId) {
  const out = $("#analysis");
  out.textContent = "analysing…";
  out.title = "Tempo, time signature and key are being analysed from the stems";
  try {
    const a = await getJson(`/api/songs/${songId}/analysis`);
    if (mixer.songId !== songId) return;
    mixer.analysis = a;
    out.textContent = `${a.tempo_bpm.toFixed(1)} BPM · ${a.time_signature} · ${a.key}`;
    out.title = "Tempo, time signature and key, analysed once from the stems";
    showTimePitch();
    mixer.dirty = true; // the ruler numbers the bars now
  } catch (e) {
    if (mixer.songId !== songId) return;
    if (e.status === 429) setTimeout(() => { if (mixer.songId === songId) showAnalysis(songId); }, ANALYSIS_RETRY_MS);
    else out.textContent = "";
  }
}

// -- A/B: the original song against the current mix, at the same position. The original is fetched and decoded
// on the first press (it is as large as one stem), then plays in sync with the stems at all times; the switch only
// moves two gains (5 ms glides), so nothing restarts and the position is kept.
export async function toggleAB() {
  const button = $("#ab");
  if (!mixer.original) {
    button.disabled = true;
    setStatus("loading the original…");
    try {
      const data = await (await api(`/api/songs/${mixer.songId}/original`)).arrayBuffer();
      const buffer = await mixer.ctx.decodeAudioData(data);
      const gain = mixer.ctx.createGain();
      gain.gain.value = 0;
      gain.connect(mixer.pitchIn);
      mixer.original = { buffer, gain };
      if (mixer.playing) startAt(position());
      setStatus("");
    } finally { button.disabled = false; }
  }
  mixer.ab = !mixer.ab;
  setParam(mixer.mixBus.gain, mixer.ab ? 0 : 1);
  setParam(mixer.original.gain.gain, mixer.ab ? 1 : 0);
  button.setAttribute("aria-pressed", String(mixer.ab));
  button.textContent = mixer.ab ? "A/B: original" : "A/B: mix";
}


// -- save loop as sample: the mix over the loop, cut on the server into its sample library (stemwright.samples)
export async function saveLoopSample() {
  const { start, end } = mixer.loop;
  if (!(end > start)) return;
  const button = $("#save-sample");
  button.disabled = true;
  try {
    const entry = await (await postJson(`/api/songs/${mixer.songId}/samples`, { document: mixDocument(), start, end })).json();
    const link = $("#sample-link");
    link.href = entry.href;
    link.download = entry.path.split("/").pop();
    link.classList.remove("hidden");
    setStatus(`saved ${entry.path.split("/").pop()} (${entry.duration_s.toFixed(2)} s) in the sample library`);
  } finally { button.disabled = false; }
}


// Render the mix on the server and download it; the button stays disabled meanwhile (one render at a time).
export async function exportMix() {
  const fmt = $("#export-format").value;
  const button = $("#export");
  if (button.disabled) return;
  button.disabled = true;
  setStatus("rendering export…");
  try {
    const res = await postJson(`/api/songs/${mixer.songId}/export`, { format: fmt, document: mixDocument() });
    const blob = await res.blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    // the server's name keeps the title's Unicode (RFC 5987 filename*)
    const cd = res.headers.get("content-disposition") || "";
    const star = cd.match(/filename\*=UTF-8''([^;]+)/i);
    a.download = star ? decodeURIComponent(star[1]) : `mix.${fmt}`;
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    setStatus(`exported ${fmt}`);
  } finally { button.disabled = false; }
}
