#!/usr/bin/env bash
# One-shot, idempotent set-up for stemwright on a fresh Debian machine with Python 3.11.
#
#   scripts/setup.sh         .venv + torch (CPU wheel 2.13.0 first, so that no range pulls a CUDA build) + stemwright:
#                            everything `stemwright separate` / `mix` / `eval` need. No root, no system packages.
#   scripts/setup.sh --dev   also the [dev] extra (every optional part: studio, synth, train, plot, onnx, ray, transcribe,
#                            test tools), basic-pitch for `stemwright transcribe` (--no-deps), the reference packages
#                            of the parity tests, and the Debian packages that only the test suite and
#                            `stemwright synth` use (FluidSynth, sound fonts, Chromium): with apt as root, or through
#                            sudo; without either it names what is missing and what needs it.
#
# Python packages are installed with the exact versions of scripts/constraints.txt (the versions the suite last
# passed with), so that a new release of a dependency cannot break these commands overnight. To move to newer
# releases: bash scripts/update-constraints.sh, then make test, then commit the file.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[ "${1:-}" = "--dev" ] && DEV=1

if [ "$DEV" = 1 ]; then
  APT_PACKAGES=(
    fluidsynth fluid-soundfont-gm musescore-general-soundfont timgm6mb-soundfont hydrogen-drumkits  # stemwright synth
    chromium                                                                                       # browser tests
    ffmpeg                                                                                         # NI Stems tests (ffprobe, stempeg)
    jackd2                                                                                         # stemwright live tests (jackd -d dummy)
  )
  need_apt=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
  done
  if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
      if sudo -n true 2>/dev/null || [ -t 0 ]; then SUDO="sudo"; else SUDO="none"; fi
    fi
    if [ "$SUDO" = "none" ]; then
      echo "[setup] warning: cannot install ${need_apt[*]} (not root, no sudo). 'stemwright synth' and the synth," \
           "training-data and browser tests need them: apt-get install ${need_apt[*]}" >&2
    else
      echo "[setup] apt-get install ${need_apt[*]}"
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    fi
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPIP=".venv/bin/python -m pip"
stamp=.venv/.stemwright-setup  # holds the hash of the set-up files when the plain set-up is done; .dev for --dev
CONSTRAINTS=(-c scripts/constraints.txt)
hash=$(cat pyproject.toml scripts/setup.sh scripts/requirements-parity.txt scripts/requirements-transcribe.txt scripts/constraints.txt | sha256sum | cut -c1-16)
done_dev=$([ "$(cat $stamp.dev 2>/dev/null)" = "$hash" ] && echo 1 || echo 0)
done_plain=$([ "$(cat $stamp 2>/dev/null)" = "$hash" ] && echo 1 || echo 0)
if [ "$done_dev" = 0 ] && { [ "$DEV" = 1 ] || [ "$done_plain" = 0 ]; }; then  # a --dev set-up covers the plain one
  echo "[setup] installing Python packages into .venv"
  $VPIP install -q --disable-pip-version-check "${CONSTRAINTS[@]}" torch==2.13.0
  if [ "$DEV" = 1 ]; then
    $VPIP install -q --disable-pip-version-check "${CONSTRAINTS[@]}" -e ".[dev]"
    # Reference implementations for parity tests. --no-deps: their pins would pull torchaudio / a CUDA torch.
    $VPIP install -q --disable-pip-version-check --no-deps -r scripts/requirements-parity.txt
    # stemwright transcribe: basic-pitch runs its ONNX model; --no-deps because it requires TensorFlow on Linux.
    $VPIP install -q --disable-pip-version-check --no-deps -r scripts/requirements-transcribe.txt
    echo "$hash" > $stamp.dev
  else
    $VPIP install -q --disable-pip-version-check "${CONSTRAINTS[@]}" -e .
  fi
  # librosa's numba functions compiled once here, in one process: processes that compiled them together in a fresh
  # venv crashed reading each other's cache entries (scripts/warm_numba.py).
  echo "[setup] compiling librosa's numba functions"
  .venv/bin/python -W ignore scripts/warm_numba.py \
    || echo "[setup] warning: scripts/warm_numba.py failed; parallel first runs may race on numba's cache" >&2
  echo "$hash" > $stamp
fi
echo "[setup] ready: .venv/bin/stemwright"
