// The drums panel (issue 27, "replace weak drums with better samples"): a sample per class (kick, snare, hat) from an
// installed Hydrogen kit or a one-shot uploaded to the song, a blend, and Apply: the server runs stemwright.drums on
// the song's drums stem (POST /api/songs/ID/drums) and answers a layer, which joins the mixer as a strip while the
// drums channel is muted. So the mix document saves the replaced drums (its layers), the export renders them, and
// A/B switches between the replaced and the original drums while playing.
import { $, api, getJson, postJson, setStatus } from "./api.js";
import { applyAll } from "./graph.js";
import { addLayerStrip, layerStrips, removeLayerStrip } from "./layers.js";
import { changed, mixer, onChange } from "./state.js";

const CLASSES = ["kick", "snare", "hat"];
const panel = { kits: null, samples: [], drumLayers: new Map(), uploadFor: null }; // drumLayers: file -> settings

export const drumsStem = () => mixer.strips.find((s) => !s.layer && s.name === "drums");
const drumLayerStrips = () => layerStrips().filter((s) => panel.drumLayers.has(s.layer.file));
export const replacedPlaying = () => { const d = drumsStem(); return !!d && d.mute && drumLayerStrips().some((s) => !s.mute); };

export function setupDrumsPanel() {
  $("#drum-apply").onclick = () => report(applyDrums());
  $("#drum-ab").onclick = toggleDrums;
  $("#drum-kit").onchange = fillClassOptions;
  $("#drum-blend").oninput = (e) => { $("#drum-blend-out").textContent = Number(e.target.value).toFixed(2); };
  for (const kind of CLASSES) {
    $(`.drum-upload[data-class=${kind}]`).onclick = () => { panel.uploadFor = kind; $("#drum-sample-input").click(); };
  }
  $("#drum-sample-input").onchange = (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (file) report(uploadSample(file, panel.uploadFor));
  };
  onChange(showAB);
}

const report = (p) => p.catch((e) => setStatus(e.message));

// A song opened in the mixer: the panel shows when it has a drums stem, with the kits, the song's one-shots and
// the settings of the replaced drums its mix plays.
export async function openDrumsPanel() {
  const songId = mixer.songId;
  $("#drums-panel").classList.toggle("hidden", !drumsStem());
  if (!drumsStem()) return;
  if (panel.kits === null) panel.kits = (await getJson("/api/drums/kits")).kits;
  const [{ samples }, { layers }] = await Promise.all([getJson(`/api/songs/${songId}/drums/samples`), getJson(`/api/songs/${songId}/layers`)]);
  if (mixer.songId !== songId) return;
  panel.samples = samples;
  panel.drumLayers = new Map(layers.filter((la) => la.drums).map((la) => [la.file, la.drums]));
  const kit = $("#drum-kit");
  kit.innerHTML = "";
  kit.append(new Option(panel.kits.length ? "no kit" : "no kit installed", ""));
  for (const name of panel.kits) kit.append(new Option(name, name));
  const current = drumLayerStrips().filter((s) => !s.mute).map((s) => panel.drumLayers.get(s.layer.file)).pop();
  const settings = current || { kit: panel.kits[0] || null, kick: panel.kits.length ? "kit" : null, snare: panel.kits.length ? "kit" : null, hat: panel.kits.length ? "kit" : null, blend: 1 };
  kit.value = settings.kit || "";
  fillClassOptions();
  for (const kind of CLASSES) $(`.drum-class[data-class=${kind}]`).value = settings[kind] || "";
  $("#drum-blend").value = settings.blend;
  $("#drum-blend-out").textContent = Number(settings.blend).toFixed(2);
  showAB();
}

// Each class: keep the original hits, the kit's sample (with a kit chosen) or one of the song's one-shots.
function fillClassOptions() {
  const kit = $("#drum-kit").value;
  for (const kind of CLASSES) {
    const sel = $(`.drum-class[data-class=${kind}]`), was = sel.value;
    sel.innerHTML = "";
    sel.append(new Option("keep original", ""));
    if (kit) sel.append(new Option(`${kit}'s ${kind}`, "kit"));
    for (const s of panel.samples) sel.append(new Option(s.name, s.sample));
    sel.value = [...sel.options].some((o) => o.value === was) ? was : kit ? "kit" : "";
  }
}

async function uploadSample(file, kind) {
  const form = new FormData();
  form.append("file", file);
  setStatus(`uploading ${file.name}…`);
  const sample = await (await api(`/api/songs/${mixer.songId}/drums/samples`, { method: "POST", body: form })).json();
  panel.samples.push(sample);
  fillClassOptions();
  $(`.drum-class[data-class=${kind}]`).value = sample.sample;
  setStatus(`one-shot ${sample.name} ready for the ${kind}`);
}

// Apply: the server replaces the drums; the new layer takes the place of the panel's earlier one.
export async function applyDrums() {
  const body = { kit: $("#drum-kit").value || null, blend: Number($("#drum-blend").value) };
  for (const kind of CLASSES) body[kind] = $(`.drum-class[data-class=${kind}]`).value || null;
  const button = $("#drum-apply");
  button.disabled = true;
  setStatus("replacing the drums…");
  try {
    const songId = mixer.songId;
    const layer = await (await postJson(`/api/songs/${songId}/drums`, body)).json();
    if (mixer.songId !== songId) return;
    for (const s of drumLayerStrips()) removeLayerStrip(s);
    panel.drumLayers.set(layer.file, layer.drums);
    await addLayerStrip({ file: layer.file, name: layer.name, offset_s: 0, gain_db: 0, pan: 0, mute: false, effects: [] });
    drumsStem().mute = true;
    applyAll();
    const hits = Object.entries(layer.hits).map(([k, n]) => `${n} ${k}`).join(", ");
    // The kit's samples are now in the user's track: say under which licence (an uploaded one-shot claims none).
    const licences = [...new Set(Object.values(layer.licences))].join("; ");
    setStatus(`drums replaced (${hits || "no hits found"})${licences ? ` · samples: ${licences}` : ""}`);
  } finally {
    button.disabled = false;
  }
}

// A/B: the replaced drums (drums channel muted, the layer playing) or the original ones.
function toggleDrums() {
  const layers = drumLayerStrips(), stem = drumsStem();
  if (!layers.length || !stem) return;
  const replaced = replacedPlaying();
  stem.mute = !replaced;
  for (const s of layers) s.mute = true;
  if (!replaced) layers[layers.length - 1].mute = false;
  applyAll();
}

function showAB() {
  const b = $("#drum-ab");
  if (!b) return;
  const replaced = replacedPlaying();
  b.disabled = !drumLayerStrips().length;
  b.setAttribute("aria-pressed", String(replaced));
  b.textContent = replaced ? "A/B: replaced drums" : "A/B: original drums";
}
