#!/bin/bash
# Issue 27's figures in one command (docs/remix.md, "Replace the drums" and "Clean a stem"):
#   benchmarks/bench_remix.sh [WORKDIR]        (default /tmp/stemwright-remix-bench; ~25 min on 2 shared cores)
# Generates the dev songs (stemwright synth --seed 11, tuning), the held-out ones (--seed 67, never looked at before
# the seventh session's last choice) and the seed-41 songs (held out until the sixth session reported on them: seen),
# 10 songs of 20 s each, separates them and the visible MUSDB excerpt with `classic`, then prints the drum-hit
# figures (true and separated drums) and the debleed figures (bleed and SDR per stem, before/after) for each set:
# with one share for every stem (0.05, the sixth session's default) and with each stem's own tuning (the default).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-/tmp/stemwright-remix-bench}
PY=${PYTHON:-python}
SW="$PY -m stemwright.cli.main"
MUSDB=${MUSDB:-../shared/data/musdb18-excerpts/Music Delta - 80s Rock}
mkdir -p "$W"
lscpu | grep 'Model name' || true
echo "threads: ${OMP_NUM_THREADS:-default}"; uptime
for set in dev:11 held:67 seen:41; do
  name=${set%%:*}; seed=${set##*:}
  $SW synth -o "$W/$name" -n 10 --seconds 20 --seed "$seed" --no-mir1k -q --skip-existing
  for s in "$W/$name"/*/; do
    n=$(basename "$s")
    [ -d "$W/${name}sep/$n" ] || $SW separate "$s/mixture.wav" -m classic -o "$W/${name}sep/$n" -q
  done
done
[ -d "$W/musdbsep" ] || $SW separate "$MUSDB/mixture.flac" -m classic -o "$W/musdbsep" -q
for name in dev held seen; do
  echo "== drums, $name, true stems"; $PY benchmarks/bench_drums.py "$W/$name"
  echo "== drums, $name, classic's drums"; $PY benchmarks/bench_drums.py "$W/$name" --separated "$W/${name}sep"
  echo "== drums, $name, true stems, ghost notes counted"; $PY benchmarks/bench_drums.py "$W/$name" --all-hits | tail -1
done
for tuning in "--share 0.05" ""; do
  echo "== debleed, MUSDB excerpt (7 s: +-1 dB SDR is noise)"
  $PY benchmarks/bench_debleed.py "$W/musdbsep/mixture" "$MUSDB" $tuning
  for name in dev held seen; do
    echo "== debleed, $name songs"; $PY benchmarks/bench_debleed.py --songs "$W/$name" --separated "$W/${name}sep" $tuning
  done
done
uptime
