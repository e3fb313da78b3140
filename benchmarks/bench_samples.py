"""Sample-library accuracy on ``stemwright synth --midi`` songs, where bar lines and drum hits are known exactly.

- Loop boundaries: each loop's start in the song against the nearest true bar line (bar k at k * bar length; the
  synth's tempo is constant and its first bar starts at 0): share within 10 ms, median and worst error. Loops are
  cut from the true stems with the analysis of those stems.
- Drum one-shot classes: every detected hit (no de-duplication) is matched to the MIDI drum notes starting within
  30 ms; GM pitches give the class (35/36 kick, 37/38/40 snare, 42/44/46 hats and 49-59 cymbals hat, the rest other). Scored on
  hits with one class in that window ("isolated"); hits over several classes (kick + hat) count as right when the
  class is any of them ("any"). Once on the true drum stems, once on drums separated by ``--model`` from the mixture.

Usage::

    stemwright synth -o /tmp/songs -n 6 -s 20 --seed 16 --midi
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_samples.py /tmp/songs --model classic
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# General MIDI drum pitches; cymbals count as "hat" (the classifier's high-band class)
GM = {35: "kick", 36: "kick", 37: "snare", 38: "snare", 40: "snare", 42: "hat", 44: "hat", 46: "hat",
      49: "hat", 51: "hat", 52: "hat", 53: "hat", 55: "hat", 57: "hat", 59: "hat"}


def midi_hits(song: Path) -> list[tuple[float, str]]:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(song / "song.mid"))
    return sorted((n.start, GM.get(n.pitch, "other")) for inst in pm.instruments if inst.is_drum for n in inst.notes)


def score_shots(shots, samplerate: int, hits: list[tuple[float, str]], window: float = 0.03) -> dict[str, int]:
    times = np.array([t for t, _ in hits])
    out = {"isolated": 0, "isolated_ok": 0, "any": 0, "any_ok": 0, "unmatched": 0}
    confusion: dict[str, dict[str, int]] = {}
    for s in shots:
        t = s.start / samplerate
        near = {c for tt, c in hits if abs(tt - t) <= window} if len(times) else set()
        if not near:
            out["unmatched"] += 1
            continue
        out["any"] += 1
        out["any_ok"] += s.kind in near
        if len(near) == 1:
            truth = next(iter(near))
            out["isolated"] += 1
            out["isolated_ok"] += s.kind == truth
            confusion.setdefault(truth, {}).setdefault(s.kind, 0)
            confusion[truth][s.kind] += 1
    out["confusion"] = confusion  # type: ignore[assignment]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", default="classic", help="separator for the 'separated drums' run ('' to skip)")
    args = parser.parse_args()
    from stemwright.analysis import analyze
    from stemwright.mixer.stems import load_stems
    from stemwright.samples.loops import cut_loops
    from stemwright.samples.oneshots import extract_one_shots

    songs = sorted(p for p in args.folder.iterdir() if (p / "song.mid").is_file())
    if not songs:
        sys.exit(f"error: {args.folder}: no synth songs with song.mid (use stemwright synth --midi)")
    separator = None
    if args.model:
        import stemwright

        separator = stemwright.Separator(model=args.model)
    errors, totals = [], {"true": {}, "separated": {}}
    for song in songs:
        meta = json.loads((song / "song.json").read_text())
        num, den = (int(x) for x in meta["meter"].split("/"))
        true_bar = num * 4 / den * 60.0 / float(meta["tempo_bpm"])
        stems = load_stems(song)
        a = analyze(stems)
        bar_s = a.beats_per_bar * 60.0 / a.tempo_bpm
        first = len(errors)
        for name, audio in stems.audio.items():
            for n in (1, 2, 4):
                for loop in cut_loops(audio, stems.samplerate, a.downbeats, bar_s, n):
                    t = loop.start / stems.samplerate
                    errors.append(t - round(t / true_bar) * true_bar)
        mine = np.abs(np.array(errors[first:])) * 1000
        hits = midi_hits(song)
        runs = {"true": stems.audio["drums"]}
        if separator is not None:
            mixture = stems.mixture_path
            from stemwright.audio.io import read_audio

            mix = read_audio(mixture)
            runs["separated"] = separator.separate(mix.samples, mix.samplerate)["drums"]
        for which, drums in runs.items():
            r = score_shots(extract_one_shots(drums, stems.samplerate, dedupe=False), stems.samplerate, hits)
            t = totals[which]
            for k, v in r.items():
                if k == "confusion":
                    for truth, row in v.items():
                        for est, c in row.items():
                            t.setdefault("confusion", {}).setdefault(truth, {}).setdefault(est, 0)
                            t["confusion"][truth][est] += c
                else:
                    t[k] = t.get(k, 0) + v
        print(f"{song.name}: {meta['style']}, {meta['tempo_bpm']} BPM {meta['meter']}, analysed {a.tempo_bpm:.2f} BPM "
              f"{a.time_signature}; loops within 10 ms {np.mean(mine <= 10) if len(mine) else float('nan'):.2f} "
              f"(median {np.median(mine) if len(mine) else float('nan'):.1f} ms)", flush=True)
    signed = np.array(errors) * 1000
    e = np.abs(signed)
    print(f"\nloops: {len(e)} on {len(songs)} songs; start within 10 ms of a true bar line: {np.mean(e <= 10):.3f}; "
          f"median {np.median(e):.2f} ms (signed {np.median(signed):+.2f} ms), 90th percentile {np.percentile(e, 90):.2f} ms, worst {e.max():.1f} ms")
    for which, t in totals.items():
        if not t:
            continue
        print(f"one-shots on {which} drums: {t['any'] + t['unmatched']} hits detected, {t['unmatched']} matching no "
              f"MIDI note; class accuracy isolated {t['isolated_ok'] / max(1, t['isolated']):.3f} "
              f"(n={t['isolated']}), any-of {t['any_ok'] / max(1, t['any']):.3f} (n={t['any']})")
        print("  confusion (truth -> estimated):", json.dumps(t.get("confusion", {}), sort_keys=True))


if __name__ == "__main__":
    main()
