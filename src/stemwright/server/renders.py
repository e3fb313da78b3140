"""The work behind the studio's routes that is not HTTP: the models it offers, mix document checks, and the
renders (exports, NI Stems, loop samples, analysis, bleed) that run in the bounded exports queue's threads.

Heavy imports (torch, the mixer engine) happen inside the functions: the server starts without them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stemwright.errors import StemwrightError
from stemwright.server.exports import check_mix_limits
from stemwright.server.layerfiles import check_layers


class MixDocumentError(StemwrightError):
    """A mix document the mixer engine refuses; the message names the field and the reason."""


@dataclass(frozen=True, kw_only=True)
class StudioModel:
    """A model the studio offers: a registry model, or a published one whose files are already on disk."""

    name: str
    sources: tuple[str, ...]
    description: str
    licence: str


def model_entries() -> list[StudioModel]:
    """The registry's usable models, then the published models usable offline (e.g. ``spleeter_2stems``, whose
    weights ship in a package): the studio never downloads. Importing the registry loads torch: call from a worker
    thread, never the event loop."""
    from stemwright.models.registry import MODELS
    from stemwright.pretrained.catalogue import list_published

    models = [StudioModel(name=e.name, sources=tuple(e.sources), description=e.description, licence=e.licence)
              for e in MODELS.values() if not e.needs_references]
    models += [StudioModel(name=e["name"], sources=tuple(e["sources"]), description=e["description"],
                           licence=e["licence"]) for e in list_published() if e["on_disk"]]
    return models


def default_model_name() -> str:
    from stemwright.models.registry import DEFAULT_MODEL

    return DEFAULT_MODEL


def validate_mix(document: Any, stems: dict[str, Path], layers_dir: Path | None = None) -> dict[str, Any]:
    """Check a mix document with the mixer engine's own validation; returns it normalised. Layers must name files
    uploaded to the song (``layers_dir``; none where that is None). Raises :class:`MixDocumentError`."""
    if not isinstance(document, dict):
        raise MixDocumentError("'document' must be a mix document (JSON object)")
    from stemwright.mixer.document import Mix

    try:
        mix = Mix.from_dict(document)
        unknown = [c.stem for c in mix.channels if c.stem not in stems]
        if unknown:
            raise ValueError(f"unknown stem(s) {', '.join(unknown)}; this song has {', '.join(stems)}")
        check_mix_limits(mix)
        check_layers(mix, layers_dir)
    except (ValueError, TypeError, KeyError) as e:
        raise MixDocumentError(f"invalid mix document: {e}") from None
    return mix.to_dict()


def load_stemset(stems: dict[str, Path]) -> Any:
    from stemwright.audio.io import read_audio
    from stemwright.mixer.stems import as_stemset

    files = {name: read_audio(path) for name, path in stems.items()}
    rate = next(iter(files.values())).samplerate
    return as_stemset({name: f.samples for name, f in files.items()}, rate)


def render_loop_sample(document: dict[str, Any], stems: dict[str, Path], library_dir: Path, title: str,
                        analysis: dict[str, Any], start: float, end: float,
                        layers_dir: Path | None = None) -> dict[str, Any]:
    """Render the mix, cut ``[start, end)`` into the sample library; bar numbers when both ends are bar lines. A song
    with no steady tempo (``tempo_bpm`` null) is indexed at its mean tempo (``mean_bpm``)."""
    from stemwright.mixer.document import Mix
    from stemwright.mixer.render import render
    from stemwright.samples.library import add_loop_sample

    stemset = load_stemset(stems)
    mix = Mix.from_dict(document)
    mix.base = layers_dir
    audio = render(mix, stemset)
    downs = list(analysis.get("downbeats") or [])
    on_bar = lambda t: next((i for i, d in enumerate(downs) if abs(d - t) < 1e-3), None)  # noqa: E731
    i, j = on_bar(start), on_bar(end)
    bar, bars = (i + 1, j - i) if i is not None and j is not None and j > i else (None, None)
    entry = add_loop_sample(audio, stemset.samplerate, library_dir, song=title, stem="mix", start_s=start, end_s=end,
                            bpm=float(analysis.get("tempo_bpm") or analysis["mean_bpm"]), key=str(analysis["key"]), bar=bar, bars=bars)
    return asdict(entry)


def bleed(stems: dict[str, Path]) -> dict[str, Any]:
    """Full-band bleed of ``stemwright inspect`` (mixer/inspect.py): the matrix and each stem's row mean."""
    from stemwright.mixer.inspect import bleed_matrix

    stemset = load_stemset(stems)
    matrices, _bands = bleed_matrix(stemset.audio, stemset.samplerate)
    band = next(iter(matrices))  # the full band comes first (as in inspect's report)
    matrix = matrices[band]
    per_stem = {}
    for i, name in enumerate(stemset.names):
        others = [v for j, v in enumerate(matrix[i]) if j != i and v is not None]
        per_stem[name] = round(sum(others) / len(others), 3) if others else None
    return {"band": band, "stems": list(stemset.names), "matrix": matrix, "per_stem": per_stem}


def analyse(stems: dict[str, Path]) -> dict[str, Any]:
    from stemwright.analysis import analyze

    return analyze(load_stemset(stems)).to_dict()


def render_ni_stems(stems: dict[str, Path], source: Path, target: Path, codec: str) -> None:
    from stemwright.mixer.export import export_ni_stems

    export_ni_stems(load_stemset(stems), target, mixture=source if source.is_file() else None, codec=codec)


def render_export(document: dict[str, Any], stems: dict[str, Path], target: Path, fmt: str,
                  layers_dir: Path | None = None) -> None:
    from stemwright.server.render_bridge import render_to_file

    render_to_file(document, stems, target, fmt, layers_dir)
