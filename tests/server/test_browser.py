"""stemwright studio in a real browser: Playwright driving the system Chromium against `stemwright serve`.

The server runs as a real subprocess (the command users run) on a free loopback port with the `classic` model.
Screenshots are kept under artifacts/studio/ (and the mixer one is what the README shows).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.server.conftest import MP3

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "studio"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("studio")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "stemwright.cli.main", "serve", "--port", "0", "--data-dir", str(data), "-m", "classic"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    line = proc.stdout.readline()
    m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
    assert m, f"server did not print its URL: {line!r}"
    url = m.group(1)
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "api/health", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    yield url, data
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed (scripts/setup.sh installs the Debian 'chromium' package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_studio_end_to_end(server, browser, mixtures_dir, tmp_path):
    url, data_dir = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#model-select option[value=classic]", state="attached")

    # upload and watch the progress bar reach 100 %
    page.set_input_files("#file-input", str(mixtures_dir / MP3))
    row = page.locator("#songs tbody tr").first
    row.wait_for()
    seen = set()
    deadline = time.time() + 120
    while time.time() < deadline:
        seen.add(int(row.locator("[role=progressbar]").get_attribute("aria-valuenow") or 0))
        if row.locator(".status").inner_text().startswith("done"):
            break
        time.sleep(0.1)
    page.wait_for_selector("#songs button.open")
    # status and bar change in the same event: read the bar again after seeing "done"
    seen.add(int(row.locator("[role=progressbar]").get_attribute("aria-valuenow") or 0))
    assert row.locator(".pct").inner_text() == "100%"
    assert max(seen) == 100
    page.screenshot(path=str(ARTIFACTS / "library.png"))

    # open the mixer: one strip per stem
    page.click("#songs button.open")
    # openMixer runs after the hash change: "#loading" is still hidden right after the click, so wait for the
    # strips and for the loading note to be hidden again
    page.wait_for_function("document.querySelectorAll('#strips .strip').length > 0 && "
                           "document.querySelector('#loading').classList.contains('hidden')", timeout=60_000)
    stems = page.eval_on_selector_all("#strips .strip", "els => els.map(e => e.dataset.stem)")
    assert sorted(stems) == ["bass", "drums", "other", "vocals"]
    song_id = page.evaluate("window.studio.mixer.songId")

    # play: the audio clock advances and the playback position follows
    page.click("#play")
    page.wait_for_function("window.studio.mixer.playing && window.studio.position() > 0.5", timeout=10_000)
    t0 = page.evaluate("window.studio.mixer.ctx.currentTime")
    time.sleep(0.5)
    assert page.evaluate("window.studio.mixer.ctx.currentTime") > t0 + 0.2
    assert page.evaluate("window.studio.mixer.ctx.state") == "running"
    # seek by clicking the waveform at 25 %: all stems restart together at that point
    wave = page.locator("#strips .strip[data-stem=drums] canvas")
    box = wave.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] / 2)
    pos = page.evaluate("window.studio.position()")
    dur = page.evaluate("window.studio.mixer.duration")
    assert 0.2 * dur <= pos <= 0.25 * dur + 1.0
    active = page.evaluate("document.activeElement.outerHTML.slice(0, 80)")
    page.keyboard.press("Space")  # pause
    page.wait_for_timeout(300)
    assert page.evaluate("window.studio.mixer.playing") is False, active

    # move a fader, mute a stem (button), pan one, and toggle solo with the keyboard on a focused strip
    page.eval_on_selector("#strips .strip[data-stem=drums] input.gain",
                          "el => { el.value = -6; el.dispatchEvent(new Event('input')); }")
    page.eval_on_selector("#strips .strip[data-stem=other] input.pan",
                          "el => { el.value = -0.5; el.dispatchEvent(new Event('input')); }")
    page.click("#strips .strip[data-stem=bass] button.mute")
    page.focus("#strips .strip[data-stem=vocals]")
    page.keyboard.press("s")
    page.keyboard.press("s")
    page.wait_for_function(
        "(() => { const g = Object.fromEntries(window.studio.mixer.strips.map(s => [s.name, s.fader.gain.value]));"
        " return Math.abs(g.drums - 0.501187) < 1e-3 && g.bass < 1e-4 && Math.abs(g.vocals - 1) < 1e-3; })()",
        timeout=5_000,
    )
    gains = page.evaluate("Object.fromEntries(window.studio.mixer.strips.map(s => [s.name, s.fader.gain.value]))")
    assert abs(gains["drums"] - 10 ** (-6 / 20)) < 1e-3 and gains["bass"] < 1e-4 and abs(gains["vocals"] - 1) < 1e-3
    page.screenshot(path=str(ARTIFACTS / "mixer.png"))

    # save the mix and check the stored document
    page.click("#save-mix")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('mix saved')")
    stored = _get(f"{url}api/songs/{song_id}/mixes")["mixes"][0]["document"]
    by_stem = {c["stem"]: c for c in stored["channels"]}
    assert by_stem["drums"]["gain_db"] == -6 and by_stem["bass"]["mute"] is True
    assert by_stem["other"]["pan"] == -0.5 and by_stem["vocals"]["solo"] is False

    # export as wav and compare with `stemwright mix` on the same document
    with page.expect_download() as dl:
        page.click("#export")
    exported = tmp_path / "export.wav"
    dl.value.save_as(exported)
    doc_path = tmp_path / "mix.json"
    doc_path.write_text(json.dumps(stored))
    job_dirs = list((data_dir / "songs" / song_id / "jobs").iterdir())
    assert len(job_dirs) == 1
    cli_out = tmp_path / "cli.wav"
    subprocess.run([sys.executable, "-m", "stemwright.cli.main", "mix", str(job_dirs[0]), "--mix-file", str(doc_path),
                    "-o", str(cli_out), "--format", "wav"], check=True, capture_output=True)
    a, sr_a = sf.read(exported, always_2d=True)
    b, sr_b = sf.read(cli_out, always_2d=True)
    assert sr_a == sr_b and a.shape == b.shape
    rms = lambda x: 20 * np.log10(np.sqrt(np.mean(x ** 2)) + 1e-12)  # noqa: E731
    assert abs(rms(a) - rms(b)) < 0.01
    assert np.max(np.abs(a - b)) < 1e-4

    # what the page plays == what the server renders (gain, pan, mute/solo): render offline in the browser
    rendered = page.evaluate("window.studio.renderOffline(4.0)")
    web = np.array(rendered["channels"])  # (2, n) at the browser's decode rate
    n = web.shape[1]
    if rendered["samplerate"] == sr_a:
        server_part = a[:n].T
        for ch in range(2):
            assert abs(rms(web[ch]) - rms(server_part[ch])) < 0.1, ch
        assert np.corrcoef(web[0], server_part[0])[0, 1] > 0.999
    else:
        for ch in range(2):
            assert abs(rms(web[ch]) - rms(a[: int(4.0 * sr_a), ch])) < 0.1, ch

    # narrow window still usable: strips stack and nothing overflows horizontally
    page.set_viewport_size({"width": 420, "height": 900})
    page.wait_for_timeout(200)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.screenshot(path=str(ARTIFACTS / "mixer-narrow.png"), full_page=True)
    assert not errors, errors
    page.close()
