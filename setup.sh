#!/usr/bin/env bash
# v2m's one set-up command for a fresh Debian machine:
#   1. the Debian packages v2m needs (installed with apt-get only when missing; sudo when not root):
#      FluidSynth and the MuseScore General soundfont, chromium for the web app's browser test and
#      espeak-ng for the speech tests,
#   2. a virtual environment in .venv (or the one already active) with v2m and its test tools.
# Environment: V2M_TORCH overrides the torch requirement (default torch==2.13.0; e.g. V2M_TORCH=torch
# for the newest build, or a CUDA build you installed yourself).
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-python3}
# FluidSynth renders the composer's scores; MuseScore General (an .sf3 of 86 MB) is the soundfont it
# uses by default
packages=(libfluidsynth3 musescore-general-soundfont)
# chromium: the browser the web app's end-to-end test drives (through Playwright)
packages+=(chromium)
# espeak-ng: the speech the speech-detection tests are made of (offline, a known span)
packages+=(espeak-ng)
"$python" -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
if command -v apt-get >/dev/null; then
    missing=()
    for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
    if ((${#missing[@]})); then
        sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
        echo "v2m setup: installing Debian packages: ${missing[*]}"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
    fi
fi

venv=${VIRTUAL_ENV:-$PWD/.venv}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "${V2M_TORCH:-torch==2.13.0}" -e ".[test]"
echo "v2m setup: done. Activate with: source ${venv}/bin/activate"
