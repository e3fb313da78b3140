"""Note F-measure of ``stemwright transcribe`` (basic-pitch) on songs made by ``stemwright synth --midi`` (each
part's notes are known: ``song.mid`` names each part ``<stem>/<role>``), per stem, on the true stems and on
separated ones.

Scores (``mir_eval.transcription``, as MIREX): F onset only (pitch within 50 cents, onset within 50 ms) and F with
offsets (also offset within 20 % of the note's length or 50 ms); the mean over songs, and the CPU seconds of
transcription per second of audio. The tempo is not scored (it is ``stemwright analyze``'s, measured by
``bench_analysis.py``): songs are transcribed at a given tempo, which changes nothing but the MIDI header.

Vocals are scored on songs made with ``--no-mir1k`` (the lead is a GM voice whose notes are known; a MIR-1K lead
has no MIDI). Seeds: 2601 is the development set (the per-stem pitch ranges were checked there, ``--plain``
compares them with basic-pitch's defaults); 2602 is held out (never used for a choice).

Usage::

    stemwright synth -o /tmp/held -n 40 -s 20 --seed 2602 --no-mir1k --midi
    for s in /tmp/held/*/; do n=$(basename $s); stemwright separate -m classic $s/mixture.wav \
        -o /tmp/held-classic --filename "$n/{stem}.{ext}"; done
    OMP_NUM_THREADS=1 python benchmarks/bench_transcribe.py /tmp/held [--separated /tmp/held-classic]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from stemwright.mixer.stems import load_stems
from stemwright.transcribe.model import BasicPitch, NoteSettings
from stemwright.transcribe.run import drop_overtones, settings_for, stem_notes
from stemwright.transcribe.score import NoteScore, note_scores, song_notes


def score_song(song: Path, stems_dir: Path, stems: list[str], model: BasicPitch, plain: bool,
               monophonic: list[str] | None) -> tuple[dict[str, NoteScore], float, float]:
    """Scores per stem, CPU seconds spent transcribing, seconds of audio transcribed."""
    seconds = float(json.loads((song / "song.json").read_text())["seconds"])
    audio = load_stems(stems_dir, names=stems)
    scores, cpu = {}, 0.0
    for stem in stems:
        c0 = time.process_time()
        if plain:
            notes = model.notes(audio[stem], audio.samplerate, NoteSettings())
        elif monophonic is not None:  # a development comparison: overtones dropped on these stems only
            notes = model.notes(audio[stem], audio.samplerate, settings_for(stem))
            notes = drop_overtones(notes) if stem in monophonic else notes
        else:
            notes = stem_notes(model, stem, audio[stem], audio.samplerate)
        cpu += time.process_time() - c0
        scores[stem] = note_scores(song_notes(song / "song.mid", stem, until=seconds), notes)
    return scores, cpu, audio.duration * len(stems)


def report(rows: list[dict[str, NoteScore]], stems: list[str], label: str, cpu: float, audio_s: float) -> None:
    print(f"\n{label}: {len(rows)} songs; {cpu / audio_s:.3f} CPU s per s of audio")
    print(f"{'stem':<8}{'F onset':>9}{'F offset':>10}{'precision':>11}{'recall':>8}{'ref notes':>11}{'est notes':>11}")
    for stem in stems:
        got = [r[stem] for r in rows if r[stem].reference_notes]
        if not got:
            print(f"{stem:<8} no song has notes for this stem")
            continue
        mean = lambda k: float(np.mean([getattr(s, k) for s in got]))  # noqa: E731
        print(f"{stem:<8}{mean('f'):>9.3f}{mean('f_offset'):>10.3f}{mean('precision'):>11.3f}{mean('recall'):>8.3f}"
              f"{sum(s.reference_notes for s in got):>11d}{sum(s.estimated_notes for s in got):>11d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder of `stemwright synth --midi` songs")
    parser.add_argument("--stems", default="bass,vocals,other", help="stems to transcribe and score")
    parser.add_argument("--separated", type=Path, help="transcribe DIR/<song>/ stems instead of the true stems")
    parser.add_argument("--plain", action="store_true", help="basic-pitch's defaults on every stem (no pitch range)")
    parser.add_argument("--monophonic", help="drop overtones on these stems instead of run.MONOPHONIC's ('' none)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N songs")
    args = parser.parse_args()
    songs = sorted(p for p in args.folder.iterdir() if (p / "song.mid").is_file())
    if args.separated:
        songs = [s for s in songs if (args.separated / s.name).is_dir()]
    songs = songs[:args.limit] if args.limit else songs
    if not songs:
        sys.exit(f"error: {args.folder}: no synth songs with MIDI (folders with song.mid; synth --midi)")
    stems = args.stems.split(",")
    model = BasicPitch()
    rows, cpu, audio_s = [], 0.0, 0.0
    for song in songs:
        mono = None if args.monophonic is None else [m for m in args.monophonic.split(",") if m]
        scores, c, a = score_song(song, args.separated / song.name if args.separated else song, stems, model,
                                  args.plain, mono)
        rows.append(scores)
        cpu, audio_s = cpu + c, audio_s + a
        print(song.name, " ".join(f"{k} {v.f:.2f}/{v.f_offset:.2f}" for k, v in scores.items()), file=sys.stderr)
    source = f"separated: {args.separated}" if args.separated else "true stems"
    setting = ", plain settings" if args.plain else (f", overtones dropped on {args.monophonic!r}"
                                                     if args.monophonic is not None else "")
    report(rows, stems, f"{args.folder} ({source}{setting})", cpu, audio_s)


if __name__ == "__main__":
    main()
