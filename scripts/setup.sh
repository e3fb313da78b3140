#!/usr/bin/env bash
# One-shot, idempotent set-up for stemwright on a fresh Debian machine with Python 3.11.
# Installs the system packages the project uses, makes .venv, installs torch (CPU wheel 2.13.0 first, so that
# no range pulls a CUDA build), the package with its [dev] extra, and the reference packages used by parity tests.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  fluidsynth fluid-soundfont-gm musescore-general-soundfont timgm6mb-soundfont hydrogen-drumkits  # synth (issue 5)
  chromium                                                                                       # browser tests
)

need_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[setup] apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPIP=".venv/bin/python -m pip"
stamp=.venv/.stemwright-setup
hash=$(cat pyproject.toml scripts/setup.sh scripts/requirements-parity.txt | sha256sum | cut -c1-16)
if [ "$(cat $stamp 2>/dev/null)" != "$hash" ]; then
  echo "[setup] installing Python packages into .venv"
  $VPIP install -q --disable-pip-version-check torch==2.13.0
  $VPIP install -q --disable-pip-version-check -e ".[dev]"
  # Reference implementations for parity tests. --no-deps: their pins would pull torchaudio / a CUDA torch.
  $VPIP install -q --disable-pip-version-check --no-deps -r scripts/requirements-parity.txt
  echo "$hash" > $stamp
fi
echo "[setup] ready: .venv/bin/stemwright"
