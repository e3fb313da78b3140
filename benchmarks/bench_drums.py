"""Drum replacement figures (docs/remix.md, "Replace the drums"): hit F-measure within 10 ms, class accuracy and the
median alignment error of the hits found in generated songs' drums, against the hits the generator played
(``song.json``: stems.drums.parts[0].hit_list, written by ``stemwright synth``).

    python benchmarks/bench_drums.py SONGS_DIR [--separated SEP_DIR]

SONGS_DIR: folders written by ``stemwright synth``; with ``--separated``, the drums of SEP_DIR/<song>/*/drums.wav
(``stemwright separate -o SEP_DIR/<song>``) are scored instead of the true drum stems. ``--all-hits``: ghost events
(loudest hit more than 20 dB under the song's loudest, which find_hits leaves out by default) count too.

The whole dev / held-out evaluation (generation, separation, both tables) is ``benchmarks/bench_remix.sh``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from stemwright.audio.io import read_audio
from stemwright.drums.hits import MIN_GAP_S, find_hits

TOLERANCE_S = 0.010
KICK, SNARE = {35, 36}, {37, 38, 39, 40}
HAT = {42, 44, 46, 49, 51, 52, 53, 55, 57, 59}


def gm_class(note: int) -> str:
    return "kick" if note in KICK else "snare" if note in SNARE else "hat" if note in HAT else "other"


GHOST_DB = -20.0  # events this far under the song's loudest hit are ghost notes: neither counted nor held against


def reference_events(hit_list: list[dict], ghost_db: float | None = GHOST_DB) -> list[tuple[float, dict[str, list[float]], bool]]:
    """Hits played within MIN_GAP_S of each other are one event: ``(attack of its loudest hit, {class: attacks of
    the event's hits of that class}, counted)`` (kit samples start up to 20 ms before their attack, so a kick and
    a hat played together start apart, and a ride and a pedal hat played together are both hats). An event whose
    loudest hit is more than ``-ghost_db`` dB under the song's loudest hit is not counted (``None``: all count):
    find_hits leaves those out by default (MIN_RELATIVE_DB), and a hit found on one is not a false alarm either."""
    groups: list[list[dict]] = []
    for h in sorted(hit_list, key=lambda h: h["time_s"]):
        if groups and h["time_s"] - groups[-1][0]["time_s"] < MIN_GAP_S:
            groups[-1].append(h)
        else:
            groups.append([h])
    loudest = max((h["peak"] for h in hit_list), default=1.0)
    events = []
    for g in groups:
        classes: dict[str, list[float]] = {}
        for h in sorted(g, key=lambda h: -h["peak"]):
            classes.setdefault(gm_class(h["note"]), []).append(h["attack_s"])
        top = max(g, key=lambda h: h["peak"])
        counted = ghost_db is None or 20 * np.log10(max(top["peak"], 1e-12) / loudest) >= ghost_db
        events.append((top["attack_s"], classes, counted))
    return events


def _time(hit, event) -> float:
    """The attack a found hit is timed against: the nearest of its class's in the event, else the loudest's."""
    return min(event[1].get(hit.kind, [event[0]]), key=lambda a: abs(a - hit.time_s))


def score(found: list, events: list) -> dict:
    """Greedy one-to-one matching in time order within TOLERANCE_S; found hits matched to uncounted (ghost)
    events are dropped from both sides."""
    used, matched, dropped = set(), [], 0
    for hit in found:
        near = [j for j in range(len(events)) if j not in used and abs(_time(hit, events[j]) - hit.time_s) <= TOLERANCE_S]
        best = min(near, key=lambda j: abs(_time(hit, events[j]) - hit.time_s), default=None)
        if best is not None:
            used.add(best)
            if events[best][2]:
                matched.append((hit, events[best]))
            else:
                dropped += 1
    n_found, n_events = len(found) - dropped, sum(e[2] for e in events)
    p = len(matched) / max(n_found, 1)
    r = len(matched) / max(n_events, 1)
    return {"found": n_found, "events": n_events, "matched": len(matched),
            "f": 2 * p * r / max(p + r, 1e-9), "class_ok": sum(h.kind in ev[1] for h, ev in matched),
            "errors_ms": [abs(h.time_s - _time(h, ev)) * 1000 for h, ev in matched]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("songs", type=Path)
    ap.add_argument("--separated", type=Path)
    ap.add_argument("--all-hits", action="store_true", help="count ghost events too (no -20 dB floor)")
    args = ap.parse_args()
    totals = {"found": 0, "events": 0, "matched": 0, "class_ok": 0, "errors_ms": []}
    for song in sorted(p for p in args.songs.iterdir() if (p / "song.json").is_file()):
        meta = json.loads((song / "song.json").read_text())
        hit_list = meta["stems"]["drums"]["parts"][0]["hit_list"]
        path = next((args.separated / song.name).glob("*/drums.wav")) if args.separated else song / "drums.wav"
        audio = read_audio(path)
        s = score(find_hits(audio.samples, audio.samplerate),
                  reference_events(hit_list, None if args.all_hits else GHOST_DB))
        print(f"{song.name}: F {s['f']:.3f} ({s['matched']}/{s['found']} found, {s['events']} played), "
              f"class {s['class_ok'] / max(s['matched'], 1):.3f}, median error {np.median(s['errors_ms']):.3f} ms")
        for k in ("found", "events", "matched", "class_ok"):
            totals[k] += s[k]
        totals["errors_ms"] += s["errors_ms"]
    p, r = totals["matched"] / max(totals["found"], 1), totals["matched"] / max(totals["events"], 1)
    print(f"all: F {2 * p * r / max(p + r, 1e-9):.3f} (P {p:.3f}, R {r:.3f}), class accuracy "
          f"{totals['class_ok'] / max(totals['matched'], 1):.3f}, alignment median {np.median(totals['errors_ms']):.3f} ms, "
          f"90th percentile {np.percentile(totals['errors_ms'], 90):.3f} ms")


if __name__ == "__main__":
    main()
