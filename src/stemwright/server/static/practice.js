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
    // a song without a steady tempo says so (analysis.tempo_note) instead of showing a number it cannot trust
    const tempo = a.tempo_bpm != null ? `${a.tempo_bpm.toFixed(1)} BPM` : `no steady tempo (~${Math.round(a.mean_bpm)} BPM)`;
    out.textContent = `${tempo} · ${a.time_signature} · ${a.key}`;
    if (a.tempo_bpm == null && a.tempo_note) out.title = a.tempo_note;
    if (a.tempo_bpm != null || !a.tempo_note) out.title = "Tempo, time signature and key, analysed once from the stems";
    offerOctaves(a);
    showTimePitch();
    mixer.dirty = true; // the ruler numbers the bars now
  } catch (e) {
    if (mixer.songId !== songId) return;
    if (e.status === 429) setTimeout(() => { if (mixer.songId === songId) showAnalysis(songId); }, ANALYSIS_RETRY_MS);
    else out.textContent = "";
  }
}

// -- ½× / 2×: when the analysis is not sure of the octave (analysis.octave_uncertain: the song may be in half or
// double time), a choice next to the tempo rescales the grid the metronome, count-in and loop keys use: 2× adds a
// beat (and a bar line) half-way between each pair, ½× keeps every other one (the downbeats' beats).
export function scaleGrid(a, factor) {
  if (factor === 1) return a;
  const every = (ts, keep) => ts.filter((_, i) => i % 2 === keep);
  const halves = (ts) => ts.flatMap((t, i) => (i + 1 < ts.length ? [t, (t + ts[i + 1]) / 2] : [t]));
  const first = a.beats.findIndex((t) => Math.abs(t - (a.downbeats[0] ?? a.beats[0])) < 1e-3);
  return { ...a, tempo_bpm: a.tempo_bpm * factor, mean_bpm: a.mean_bpm * factor,
    beats: factor > 1 ? halves(a.beats) : every(a.beats, Math.max(first, 0) % 2),
    downbeats: factor > 1 ? halves(a.downbeats) : every(a.downbeats, 0) };
}

function offerOctaves(a) {
  $("#tempo-octave")?.remove();
  if (!a.octave_uncertain || a.tempo_bpm == null) return;
  const select = document.createElement("select");
  select.id = "tempo-octave";
  select.setAttribute("aria-label", "Metronome tempo: the analysed one, half or double (the octave is uncertain)");
  select.title = `The tempo may be half or double (${a.tempo_alternatives.map((b) => b.toFixed(1)).join(" / ")} BPM): ` +
    "the metronome, count-in and loop keys follow this choice";
  for (const [factor, label] of [[0.5, "½×"], [1, "1×"], [2, "2×"]]) select.add(new Option(label, String(factor), factor === 1, factor === 1));
  select.onchange = () => { mixer.analysis = scaleGrid(a, Number(select.value)); };
  $("#analysis").after(select);
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


// Save a fetched file under the server's name (its RFC 5987 filename* keeps the title's Unicode).
async function saveResponse(res, fallback) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await res.blob());
  const star = (res.headers.get("content-disposition") || "").match(/filename\*=UTF-8''([^;]+)/i);
  a.download = star ? decodeURIComponent(star[1]) : fallback;
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
}

// Run `work` with `control` marked busy, saying `doing` on the status line; a click while busy starts nothing.
async function busyWhile(control, doing, work) {
  if (control.disabled || control.getAttribute("aria-disabled") === "true") return;
  control.disabled = true; // a button
  control.setAttribute("aria-disabled", "true"); // a link
  setStatus(doing);
  try { await work(); } finally { control.disabled = false; control.removeAttribute("aria-disabled"); }
}

// Render the mix on the server and download it.
export function exportMix() {
  const fmt = $("#export-format").value;
  return busyWhile($("#export"), "rendering export…", async () => {
    await saveResponse(await postJson(`/api/songs/${mixer.songId}/export`, { format: fmt, document: mixDocument() }), `mix.${fmt}`);
    setStatus(`exported ${fmt}`);
  });
}

// A download the server prepares first (the stems .zip, NI Stems: seconds to minutes for a long song).
export function preparedDownload(link, what) {
  return busyWhile(link, `preparing ${what}…`, async () => {
    await saveResponse(await api(link.getAttribute("href")), link.getAttribute("download") || "stems");
    setStatus(`downloaded ${what}`);
  });
}
