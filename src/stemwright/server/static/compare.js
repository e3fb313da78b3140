// Compare models: another finished separation of the same song (another model's run) is loaded next to the
// current one; each strip switches between the two buffers (the sources restart at the same position, so the
// switch is heard at once and the stems stay in sync), with inspect's bleed figures of both side by side.
import { $, api, getJson, setStatus } from "./api.js";
import { mixer, position } from "./state.js";
import { stream } from "./streamload.js";
import { startAt } from "./transport.js";

const BLEED_RETRY_MS = 2000;

// The separation the mixer plays: the stream's job once it has loaded the finished stems (a song opened while it was
// separated was read before it had any: its stems_job is the one it had then, or none), else the song's own.
function currentJob() {
  if (stream.songId === mixer.songId && stream.done && stream.jobId) return stream.jobId;
  return mixer.song && mixer.song.stems_job;
}

// The list is built after the answer and put in at once: two refreshes in flight (the mixer's own on opening and
// at the end of a separation, a caller's) each used to clear it before their await and append after it: duplicates.
export async function refreshCompare() {
  const songId = mixer.songId;
  const { separations } = await getJson(`/api/songs/${songId}/separations`);
  if (mixer.songId !== songId) return;
  const current = currentJob();
  const options = [new Option("Compare…", "")];
  for (const sep of separations) {
    const finished = new Date(sep.finished * 1000).toLocaleString();
    if (sep.job_id !== current) options.push(new Option(`${sep.model} (${finished})`, sep.job_id));
  }
  const select = $("#compare");
  select.replaceChildren(...options);
  select.disabled = options.length < 2 || select.classList.contains("needs-stems"); // not while it is separated
}

export async function loadCompare(jobId) {
  const songId = mixer.songId, current = currentJob();
  setStatus("loading the other separation…");
  const { separations } = await getJson(`/api/songs/${songId}/separations`);
  const other = separations.find((x) => x.job_id === jobId), mine = separations.find((x) => x.job_id === current);
  if (!other || !mine) throw new Error("that separation is no longer there");
  const shared = mixer.strips.filter((s) => other.stems.includes(s.name));
  const buffers = await Promise.all(shared.map(async (s) => {
    const data = await (await api(`/api/songs/${songId}/stems/${encodeURIComponent(s.name)}?format=flac&job=${jobId}`)).arrayBuffer();
    return mixer.ctx.decodeAudioData(data);
  }));
  if (mixer.songId !== songId) return;
  for (const s of mixer.strips) { s.alt = null; s.useAlt = false; }
  shared.forEach((s, i) => { s.alt = buffers[i]; });
  mixer.compare = { jobId, models: [mine.model, other.model], bleed: [null, null] };
  for (const s of mixer.strips) showVersion(s);
  if (mixer.playing) startAt(position());
  renderCompareTable();
  setStatus("");
  const stillShown = () => mixer.songId === songId && mixer.compare && mixer.compare.jobId === jobId;
  const [a, b] = await Promise.all([current, jobId].map((j) => bleedOf(songId, j, stillShown)));
  if (!a || !b || !stillShown()) return;
  mixer.compare.bleed = [a.per_stem, b.per_stem];
  renderCompareTable();
}

// The bleed figures are computed in the server's bounded exports queue, which answers 429 while it is full (a
// render, the analysis or a sample export still running: minutes on a loaded machine): ask again while the
// comparison is still shown, instead of leaving the table's figures empty for good.
async function bleedOf(songId, jobId, stillShown) {
  for (;;) {
    try {
      return await (await api(`/api/songs/${songId}/bleed?job=${jobId}`)).json();
    } catch (e) {
      if (e.status !== 429) throw e;
      await new Promise((resolve) => setTimeout(resolve, BLEED_RETRY_MS));
      if (!stillShown()) return null;
    }
  }
}

export function showVersion(strip) {
  const b = $(".version", strip.el);
  const on = !!(strip.alt && mixer.compare);
  b.classList.toggle("hidden", !on);
  if (!on) return;
  b.setAttribute("aria-pressed", String(!!strip.useAlt));
  b.textContent = strip.useAlt ? "B" : "A";
  b.setAttribute("aria-label", `${strip.name}: playing ${mixer.compare.models[strip.useAlt ? 1 : 0]}; switch model`);
}

export function switchVersion(strip) {
  if (!strip.alt) return;
  strip.useAlt = !strip.useAlt;
  showVersion(strip);
  if (mixer.playing) startAt(position());
  renderCompareTable();
}

export function renderCompareTable() {
  const table = $("#compare-table");
  const c = mixer.compare;
  table.classList.toggle("hidden", !c);
  table.innerHTML = "";
  if (!c) return;
  const row = (cells, tag = "td") => {
    const tr = document.createElement("tr");
    for (const text of cells) { const cell = document.createElement(tag); cell.textContent = text; tr.append(cell); }
    table.append(tr);
    return tr;
  };
  row(["bleed (inspect)", `A: ${c.models[0]}`, `B: ${c.models[1]}`, "playing"], "th");
  const fmt = (v) => (v === null || v === undefined ? "…" : v.toFixed(3));
  for (const s of mixer.strips.filter((x) => x.alt)) {
    row([s.name, fmt(c.bleed[0] && c.bleed[0][s.name]), fmt(c.bleed[1] && c.bleed[1][s.name]), s.useAlt ? "B" : "A"]).dataset.stem = s.name;
  }
}

