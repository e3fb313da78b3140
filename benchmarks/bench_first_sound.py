"""Seconds from the end of an upload to the first sound in the studio, to the end of the separation, and stalls.

Starts ``stemwright serve`` on a free loopback port (``-m MODEL`` as its default model; it loads that model before
it says it is ready), opens the page in a headless Chromium, uploads a generated song through the page's upload
(``POST /api/songs``), and reads the page's own clock (``window.studio.state().stream``):

- ``first_sound_s``: from the upload's answer to the first time the master output is non-silent (RMS > 1e-4 on
  the master's analyser) while the audio clock runs: the page opens the mixer and plays as soon as the first
  seconds are separated (docs/studio.md, "Play while separating");
- ``separated_s``: from the upload's answer until the page has every segment of the finished stems;
- ``stalls``: how often playback reached the separated end and waited.

Then it opens the finished song again and times the mixer's load (``finished_mixer_load_s``); ``--compare-load``
also times the previous way (each stem as FLAC, decoded by ``decodeAudioData``) in the same page.

The song: the bundled demo song's generator (``stemwright.synth.demo``: drums, bass, chords, a formant vocal),
repeated to ``--seconds`` (default 240). Usage::

    .venv/bin/python benchmarks/bench_first_sound.py [-m MODEL] [--seconds 240] [--json] [--compare-load]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--autoplay-policy=no-user-gesture-required"]
REPO = Path(__file__).resolve().parents[1]

# The previous way a finished mixer loaded its stems: FLAC from the server, decodeAudioData in the page.
OLD_LOAD = """async ([songId, names]) => {
  const t0 = performance.now();
  const ctx = new AudioContext();
  await Promise.all(names.map(async (n) => ctx.decodeAudioData(
      await (await fetch(`/api/songs/${songId}/stems/${n}?format=flac`)).arrayBuffer())));
  await ctx.close();
  return (performance.now() - t0) / 1000; }"""


def make_song(path: Path, seconds: float, samplerate: int = 44100) -> Path:
    """The demo song's mixture repeated to ``seconds``, as 16-bit wav."""
    from stemwright.synth.demo import render_demo

    mix, _ = render_demo(samplerate)
    reps = int(np.ceil(seconds * samplerate / mix.shape[1]))
    song = np.tile(mix, (1, reps))[:, : int(seconds * samplerate)]
    sf.write(str(path), song.T, samplerate, subtype="PCM_16")
    return path


def machine() -> str:
    cpu = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        cpu = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), cpu)
    except OSError:
        pass
    threads = os.environ.get("OMP_NUM_THREADS", f"{os.cpu_count()} (all cores)")
    return f"CPU {cpu}; torch threads {threads}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"


class Server:
    """``stemwright serve`` in a subprocess, ready once its default model is loaded."""

    def __init__(self, model: str, data_dir: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join(p for p in [str(REPO / "src"), os.environ.get("PYTHONPATH", "")] if p)}
        self.proc = subprocess.Popen([sys.executable, "-m", "stemwright.cli.main", "serve", "--port", "0",
                                      "--data-dir", str(data_dir), "-m", model],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        m = None
        for _ in range(50):  # skip warnings printed while importing
            line = self.proc.stdout.readline()
            m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            if m or not line:
                break
        if not m:
            self.stop()
            raise SystemExit("error: the server did not print its URL")
        self.url = m.group(1)
        # Read what the server prints from now on (a pipe nobody reads would block it once full); the last lines
        # go into the error when the page waits in vain.
        self.output: collections.deque[str] = collections.deque(maxlen=40)
        threading.Thread(target=lambda: self.output.extend(self.proc.stdout), daemon=True).start()
        end = time.monotonic() + 300
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(self.url + "api/health", timeout=2) as r:
                    if json.loads(r.read()).get("model_ready"):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit("error: the server did not load its model within 300 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


# What the page shows when it waits in vain: where it is, its status line and its stream state.
PAGE_STATE = """() => ({ hash: location.hash, status: (document.querySelector('#status') || {}).textContent,
                        stream: window.studio.state().stream })"""


def _get(url: str) -> str:
    """The body of ``url`` (for an error message: whatever the server says, or why it did not)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()[-3000:]
    except OSError as e:
        return f"({e})"


def run(model: str, seconds: float, compare_load: bool, timeout: float) -> dict:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout, sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as tmp:
        song = make_song(Path(tmp) / "song.wav", seconds)
        server = Server(model, Path(tmp) / "studio")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_page()
                page.goto(server.url)
                page.wait_for_selector(f"#model-select option[value='{model}']", state="attached")
                page.select_option("#model-select", model)
                page.set_input_files("#file-input", str(song))
                try:
                    page.wait_for_function("() => window.studio.state().stream.separatedAt !== null && "
                                           "window.studio.state().stream.uploadedAt !== null",
                                           timeout=timeout * 1000, polling=200)
                except PlaywrightTimeout:
                    raise SystemExit(f"error: the page did not see the separation end within {timeout:g} s; "
                                     f"page: {page.evaluate(PAGE_STATE)}; songs: {_get(server.url + 'api/songs')}; "
                                     "server output:\n" + "".join(server.output)) from None
                try:  # a short song can be separated before the page has played a sound: wait for that too
                    page.wait_for_function("() => window.studio.state().stream.firstSoundAt !== null",
                                           timeout=30_000, polling=50)
                except PlaywrightTimeout:  # reported as no sound (null)
                    pass
                st = page.evaluate("window.studio.state().stream")
                song_id = page.evaluate("window.studio.state().songId")
                names = page.evaluate("window.studio.state().strips.map((s) => s.name)")
                up = st["uploadedAt"]
                result = {"model": model, "song_s": seconds,
                          "first_sound_s": None if st["firstSoundAt"] is None else (st["firstSoundAt"] - up) / 1000,
                          "separated_s": (st["separatedAt"] - up) / 1000, "stalls": st["stalls"]}
                # the finished song opened again: the whole mixer load, stems and waveforms
                page.evaluate("() => { location.hash = '#/'; }")
                page.wait_for_selector("#library-view:not(.hidden)")
                t0 = time.monotonic()
                page.evaluate("(id) => { location.hash = `#/song/${id}`; }", song_id)
                page.wait_for_function(f"() => window.studio.state().songId === '{song_id}' && "
                                       "document.querySelector('#loading').classList.contains('hidden')",
                                       timeout=timeout * 1000, polling=50)
                result["finished_mixer_load_s"] = time.monotonic() - t0
                if compare_load:
                    result["flac_decode_load_s"] = page.evaluate(OLD_LOAD, [song_id, names])
                browser.close()
        finally:
            server.stop()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", default=None, help="the studio's model (default: stemwright's default)")
    ap.add_argument("--seconds", type=float, default=240.0, help="length of the generated song")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--compare-load", action="store_true",
                    help="also time loading the finished stems as FLAC + decodeAudioData (the previous way)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the separation")
    args = ap.parse_args()
    if not args.seconds > 0:
        ap.error("--seconds must be positive")
    from stemwright.models.defaults import DEFAULT_MODEL

    model = args.model or DEFAULT_MODEL
    before = machine()
    result = run(model, args.seconds, args.compare_load, args.timeout)
    if args.json:
        print(json.dumps(result))
        return
    print(f"# {before}")
    print(f"# after: {machine()}")
    first = "no sound" if result["first_sound_s"] is None else f"{result['first_sound_s']:.2f} s"
    print(f"{model}, {args.seconds:g} s song: first sound {first} after the upload, separated "
          f"{result['separated_s']:.1f} s, stalls {result['stalls']}; finished mixer loads in "
          f"{result['finished_mixer_load_s']:.2f} s"
          + (f" (FLAC + decodeAudioData: {result['flac_decode_load_s']:.2f} s)" if args.compare_load else ""))


if __name__ == "__main__":
    main()
